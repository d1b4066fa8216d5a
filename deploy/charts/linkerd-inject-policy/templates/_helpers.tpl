{{/* Chart name. */}}
{{- define "lip.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name prefix of every namespaced object. */}}
{{- define "lip.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: stable across upgrades. */}}
{{- define "lip.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lip.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "lip.labels" -}}
{{ include "lip.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "lip.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lip.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The resolved certificate mode: cert-manager or self-managed. "auto" picks
cert-manager when its API is served by the cluster (helm template without
--api-versions cert-manager.io/v1 therefore renders self-managed).
*/}}
{{- define "lip.certMode" -}}
{{- $mode := .Values.certs.mode -}}
{{- if eq $mode "auto" -}}
{{- if .Capabilities.APIVersions.Has "cert-manager.io/v1/Certificate" -}}cert-manager{{- else -}}self-managed{{- end -}}
{{- else if or (eq $mode "cert-manager") (eq $mode "self-managed") -}}
{{- $mode -}}
{{- else -}}
{{- fail (printf "certs.mode %q: must be auto, cert-manager or self-managed" $mode) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the webhook never sees: its own first, then the configured ones. */}}
{{- define "lip.excludedNamespaces" -}}
{{- $out := list .Release.Namespace -}}
{{- range .Values.webhook.excludedNamespaces -}}
{{- if not (has . $out) -}}{{- $out = append $out . -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
