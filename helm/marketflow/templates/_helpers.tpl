{{- define "marketflow.labels" -}}
app.kubernetes.io/part-of: marketflow
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "marketflow.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Probes, security context and the writable scratch volumes both services share. */}}
{{- define "marketflow.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: {{ .readyPath | default "/readyz" }}
    port: http
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
{{- end -}}

{{- define "marketflow.podAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.http.port | quote }}
prometheus.io/path: /metrics
{{- end -}}

{{- define "marketflow.azureEnv" -}}
- name: EVENTHUB__fullyQualifiedNamespace
  value: {{ .Values.azure.eventHubNamespace | quote }}
- name: DEADLETTER_STORAGE__blobServiceUri
  value: {{ .Values.azure.blobServiceUri | quote }}
- name: CHECKPOINT_STORAGE__blobServiceUri
  value: {{ .Values.azure.blobServiceUri | quote }}
{{- if .Values.azure.applicationInsightsSecret }}
- name: APPLICATIONINSIGHTS_CONNECTION_STRING
  valueFrom:
    secretKeyRef:
      name: {{ .Values.azure.applicationInsightsSecret }}
      key: connection-string
{{- end }}
{{- end -}}
