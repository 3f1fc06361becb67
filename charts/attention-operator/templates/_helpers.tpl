{{/* Names and labels shared by every template of the chart. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "attention-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources: fullnameOverride, or release plus chart name
(just the release name when it already contains the chart name). */}}
{{- define "attention-operator.fullname" -}}
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

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "attention-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "attention-operator.labels" -}}
helm.sh/chart: {{ include "attention-operator.chart" . }}
{{ include "attention-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator pod; never change them between releases. */}}
{{- define "attention-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "attention-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "attention-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "attention-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the API key: the chart's own, or the existing one named in values. */}}
{{- define "attention-operator.apiKeySecretName" -}}
{{- if .Values.apiKey.create }}
{{- printf "%s-api-key" (include "attention-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- required "set apiKey.existingSecret, or apiKey.create with apiKey.value" .Values.apiKey.existingSecret }}
{{- end }}
{{- end }}

{{/* The operator image: repository and tag, the tag defaulting to the chart's appVersion. */}}
{{- define "attention-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
