{{/* Names and labels shared by every template. */}}

{{- define "dso.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dso.fullname" -}}
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

{{/* Selector labels: never change them (a Deployment's selector is immutable). */}}
{{- define "dso.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dso.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dso.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dso.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: docker-socket-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "dso.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dso.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dso.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "dso.proxyImage" -}}
{{- $repo := default .Values.image.repository .Values.proxy.image.repository -}}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.proxy.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{- define "dso.leaseName" -}}
{{- default (printf "dso-%s" (.Values.controllerName | replace "/" "-" | lower)) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* {a: b, c: d} -> "a=b,c=d" (the operator's K=V[,K=V] selector flags), keys sorted. */}}
{{- define "dso.kv" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The proxy pods' labels (set by the operator on every DaemonSet it renders). */}}
{{- define "dso.proxySelectorLabels" -}}
app.kubernetes.io/name: docker-socket-proxy
app.kubernetes.io/managed-by: docker-socket-operator
{{- end -}}
