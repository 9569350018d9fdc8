//! The age envelope around the document: binary age format, one X25519 recipient (the store's own identity).
//!
//! Binary rather than ASCII-armored so that the plain `age -d -i store.key secrets/NAME.age` works without flags, and
//! because armor needs a cargo feature of `age` for no gain. Decryption failures are sorted into the three cases an
//! operator acts on differently; the disk layer turns them into messages that name the file and the identity.

use age::x25519;
use std::io::Read;
use std::iter;
use zeroize::Zeroizing;

/// Why a file did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpenError {
    /// No age header: another kind of file, or one cut short inside its header.
    NotAge,
    /// A valid age file, but not encrypted to this identity.
    WrongKey,
    /// The header or payload fails authentication, or the payload is cut short.
    Corrupt,
}

pub(super) fn seal(recipient: &x25519::Recipient, plaintext: &[u8]) -> Result<Vec<u8>, age::EncryptError> {
    age::encrypt(recipient, plaintext)
}

/// Decrypts into a buffer that is zeroized when dropped.
pub(super) fn open(identity: &x25519::Identity, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let decryptor = age::Decryptor::new_buffered(ciphertext).map_err(|e| match e {
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat | age::DecryptError::Io(_) => {
            OpenError::NotAge
        }
        _ => OpenError::Corrupt,
    })?;
    let mut reader = decryptor.decrypt(iter::once(identity as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => OpenError::WrongKey,
        _ => OpenError::Corrupt,
    })?;
    // The plaintext is shorter than the ciphertext (header and tags), so a buffer of the ciphertext's size never
    // grows, and no copy of the plaintext is left behind in freed memory.
    let mut plaintext = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    reader.read_to_end(&mut plaintext).map_err(|_| OpenError::Corrupt)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_with_the_identity_and_not_another() {
        let (ours, theirs) = (x25519::Identity::generate(), x25519::Identity::generate());
        let sealed = seal(&ours.to_public(), b"plain").expect("seal");
        assert!(sealed.starts_with(b"age-encryption.org/v1\n"), "binary age format");
        assert_eq!(open(&ours, &sealed).expect("open").as_slice(), b"plain");
        assert_eq!(open(&theirs, &sealed), Err(OpenError::WrongKey));
    }

    #[test]
    fn damage_is_sorted_into_not_age_and_corrupt() {
        let ours = x25519::Identity::generate();
        let sealed = seal(&ours.to_public(), &[7; 1000]).expect("seal");
        assert_eq!(open(&ours, b"PK\x03\x04 a zip file"), Err(OpenError::NotAge));
        assert_eq!(open(&ours, b""), Err(OpenError::NotAge));
        assert_eq!(open(&ours, &sealed[..40]), Err(OpenError::NotAge));
        assert_eq!(open(&ours, &sealed[..sealed.len() - 10]), Err(OpenError::Corrupt));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(open(&ours, &flipped), Err(OpenError::Corrupt));
    }
}
