{{/* The Gateway's name: name, else the release name. */}}
{{- define "ambit-waypoint.name" -}}
{{- .Values.name | default .Release.Name -}}
{{- end }}

{{- define "ambit-waypoint.serviceAccount" -}}
{{- .Values.serviceAccount.name | default (include "ambit-waypoint.name" .) -}}
{{- end }}

{{/* Labels of every object; the gateway-name label is what Istio keys waypoint pods on. */}}
{{- define "ambit-waypoint.labels" -}}
gateway.networking.k8s.io/gateway-name: {{ include "ambit-waypoint.name" . }}
app.kubernetes.io/name: {{ include "ambit-waypoint.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: ambit
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ambit-waypoint.annotations" -}}
{{- with .Values.annotations -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "ambit-waypoint.image" -}}
{{- if contains "/" .Values.image -}}
{{ .Values.image }}
{{- else -}}
{{ required "hub is required" .Values.hub }}/{{ .Values.image | default "ambit-waypoint" }}:{{ .Values.tag }}{{ with .Values.variant }}-{{ . }}{{ end }}
{{- end -}}
{{- end }}

{{- define "ambit-waypoint.istiod" -}}
istiod{{ with .Values.revision }}-{{ . }}{{ end }}.{{ .Values.istioNamespace }}.svc:15012
{{- end }}
