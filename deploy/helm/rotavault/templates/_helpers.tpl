{{/*
Names and labels, and what the chart reads from rotavault's config (files/config.toml, or .Values.config).
*/}}

{{- define "rotavault.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rotavault.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rotavault.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rotavault.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rotavault.labels" -}}
{{ include "rotavault.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rotavault.serviceAccountName" -}}
{{- default (include "rotavault.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "rotavault.filesSecretName" -}}
{{- default (printf "%s-files" (include "rotavault.fullname" .)) .Values.filesSecret.name }}
{{- end }}

{{/* The config file's text. */}}
{{- define "rotavault.configText" -}}
{{- .Values.config | default (.Files.Get "files/config.toml") }}
{{- end }}

{{/*
The config, parsed, as JSON (templates return strings), after the checks that a config must pass to run in a pod:
every replica reaches the same stores, and the kubelet and Prometheus reach the HTTP port.
*/}}
{{- define "rotavault.config" -}}
{{- $text := include "rotavault.configText" . }}
{{- if not $text }}
{{- fail "config: empty; leave it unset for files/config.toml, or give a whole config.toml" }}
{{- end }}
{{- $c := $text | fromToml }}
{{- if $c.Error }}
{{- fail (printf "config: not TOML: %s" $c.Error) }}
{{- end }}
{{- $lease := dig "lease" "kind" "file" $c }}
{{- if and (gt (int .Values.replicaCount) 1) (ne $lease "kubernetes") }}
{{- fail (printf "config: [lease] kind is %q: %d replicas need kind = \"kubernetes\", or they would rotate the same jobs at once" $lease (int .Values.replicaCount)) }}
{{- end }}
{{- $ns := dig "lease" "namespace" .Release.Namespace $c }}
{{- if ne $ns .Release.Namespace }}
{{- fail (printf "config: [lease] namespace is %q but the release is in %q: the Role allows the Lease in the release's namespace only" $ns .Release.Namespace) }}
{{- end }}
{{- range $name, $store := (dig "stores" dict $c) }}
{{- if eq (toString $store.kind) "file" }}
{{- fail (printf "config: [stores.%s] is a `file` store: it would live on one pod's disk; use a store every replica reaches" $name) }}
{{- end }}
{{- end }}
{{- $listen := dig "http" "listen" "127.0.0.1:10318" $c }}
{{- if not $listen }}
{{- fail "config: [http] listen is \"\": the probes need /healthz and /readyz" }}
{{- end }}
{{- $host := $listen | trimSuffix (printf ":%s" (splitList ":" $listen | last)) }}
{{- if not (has $host (list "0.0.0.0" "[::]")) }}
{{- fail (printf "config: [http] listen is %q: in a pod it must be 0.0.0.0:PORT (or [::]:PORT), or the kubelet's probes cannot reach it" $listen) }}
{{- end }}
{{- dict "leaseName" (dig "lease" "name" "rotavault" $c) "port" (splitList ":" $listen | last | atoi) "stateDir" (dig "state_dir" "/var/lib/rotavault" $c) | toJson }}
{{- end }}
