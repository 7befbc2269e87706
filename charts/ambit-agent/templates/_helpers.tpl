{{/* The resource name: resourceName, else "ztunnel" (the name istiod trusts). */}}
{{- define "ambit-agent.name" -}}
{{- .Values.resourceName | default "ztunnel" -}}
{{- end }}

{{/* Labels of every top-level object. */}}
{{- define "ambit-agent.labels" -}}
app.kubernetes.io/name: {{ include "ambit-agent.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: istio
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
istio.io/rev: {{ .Values.revision | default "default" | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The image: `image` when it holds a "/", else hub/image:tag[-variant]. */}}
{{- define "ambit-agent.image" -}}
{{- if contains "/" .Values.image -}}
{{ .Values.image }}
{{- else -}}
{{ required "hub is required" .Values.hub }}/{{ .Values.image | default "ambit-agent" }}:{{ .Values.tag }}{{ with .Values.variant }}-{{ . }}{{ end }}
{{- end -}}
{{- end }}

{{/* istiod's address: istiod[-<revision>].<istioNamespace>.svc:15012. */}}
{{- define "ambit-agent.istiod" -}}
istiod{{ with .Values.revision }}-{{ . }}{{ end }}.{{ .Values.istioNamespace }}.svc:15012
{{- end }}
