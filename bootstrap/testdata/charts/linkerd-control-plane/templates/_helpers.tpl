{{/* Every template that needs the trust anchor checks it first, so the
     missing value is the error a user sees whatever renders first. */}}
{{- define "linkerd.trustAnchors.required" -}}
{{- if empty .Values.identityTrustAnchorsPEM -}}
{{- fail "Please provide the identity trust anchors (identityTrustAnchorsPEM)" -}}
{{- end -}}
{{- end -}}
