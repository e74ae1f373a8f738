{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "pki-issuer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, prefixed to the chart name unless it already contains it.
*/}}
{{- define "pki-issuer.fullname" -}}
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

{{- define "pki-issuer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "pki-issuer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pki-issuer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pki-issuer.labels" -}}
helm.sh/chart: {{ include "pki-issuer.chart" . }}
{{ include "pki-issuer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: pki-issuer
{{- end }}

{{- define "pki-issuer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pki-issuer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest when a digest is set, else repository:tag with the tag
defaulting to the chart's appVersion.
*/}}
{{- define "pki-issuer.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Namespace PKIClusterIssuers read Secrets and ConfigMaps from (default: the release namespace).
*/}}
{{- define "pki-issuer.clusterResourceNamespace" -}}
{{- default .Release.Namespace .Values.clusterResourceNamespace }}
{{- end }}

{{/*
Namespaces whose Secrets and ConfigMaps the controller reads and watches when
rbac.secretsClusterWide is false: the cluster resource namespace and rbac.issuerNamespaces,
without duplicates, comma-separated (the format of --watch-namespaces).
*/}}
{{- define "pki-issuer.secretNamespaces" -}}
{{- $namespaces := list (include "pki-issuer.clusterResourceNamespace" .) }}
{{- range .Values.rbac.issuerNamespaces }}
{{- $namespaces = append $namespaces . }}
{{- end }}
{{- $namespaces | uniq | join "," }}
{{- end }}
