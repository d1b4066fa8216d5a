{{/* Test stand-in helpers: only named templates, so this chart renders nothing itself. */}}
{{- define "partials.annotations.created-by" -}}
linkerd.io/created-by: linkerd/helm {{ .Values.linkerdVersion }}
{{- end -}}

{{/* The proxy container every control-plane pod runs; its admin port is linkerd-admin. */}}
{{- define "partials.proxy" -}}
- name: linkerd-proxy
  image: {{ .Values.proxyImage | default "cr.l5d.io/linkerd/proxy" }}:{{ .Values.linkerdVersion }}
  ports:
  - name: linkerd-proxy
    containerPort: 4143
  - name: linkerd-admin
    containerPort: 4191
{{- end -}}
