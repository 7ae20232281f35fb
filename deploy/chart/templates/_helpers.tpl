{{/*
Names and labels shared by every template. The two app.kubernetes.io labels are those
deploy/kustomization.yaml puts on every object; the other four are Helm's standard ones, the only
difference from `kubectl kustomize deploy/` (tests/deploy/test_helm_chart.py ignores exactly them).
*/}}

{{- define "sealed-gitops.namespace" -}}
{{- required "namespace.name is required" .Values.namespace.name -}}
{{- end -}}

{{- define "sealed-gitops.labels" -}}
app.kubernetes.io/name: sealed-gitops
app.kubernetes.io/part-of: sealed-gitops
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "sealed-gitops.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" $image.digest) -}}
{{- fail (printf "image.digest must be sha256:<64 hex digits>, not %q" $image.digest) -}}
{{- end -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (toString ($image.tag | default .Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{/*
The operator's Deployment; called with (dict "root" $ "shard" "" ) for the unsharded operator and
with a shard's name for each entry of .Values.shards. A shard's copy differs from the unsharded one
as deploy/shards/shard1 does: the name, --shard NAME, and the pod labels (component operator-NAME,
sealed-gitops.io/shard), so no two Deployments select each other's pods and the Service keeps
selecting only the unsharded operator's.
*/}}
{{- define "sealed-gitops.deployment" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $shard := .shard -}}
{{- $replicas := .replicas -}}
{{- $suffix := ternary (printf "-%s" $shard) "" (ne $shard "") -}}
{{- $component := printf "operator%s" $suffix -}}
{{- if and (not $values.leaderElection.enabled) (gt (int $replicas) 1) -}}
{{- fail (printf "replicas %d without leader election: every replica would reconcile at once; set leaderElection.enabled or replicas 1" (int $replicas)) -}}
{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sealed-gitops-operator{{ $suffix }}
  namespace: {{ include "sealed-gitops.namespace" $root }}
  labels:
    {{- include "sealed-gitops.labels" $root | nindent 4 }}
spec:
  replicas: {{ $replicas }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: sealed-gitops
      app.kubernetes.io/component: {{ $component }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1, maxSurge: 1}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: sealed-gitops
        app.kubernetes.io/component: {{ $component }}
        {{- if $shard }}
        sealed-gitops.io/shard: {{ $shard }}
        {{- end }}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $values.metrics.port | quote }}
        prometheus.io/path: /metrics
    spec:
      serviceAccountName: sealed-gitops-operator
      # the leader releases its Lease on SIGTERM; give it the time to finish a reconcile first
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    app.kubernetes.io/name: sealed-gitops
                    app.kubernetes.io/component: {{ $component }}
      containers:
        - name: operator
          image: {{ include "sealed-gitops.image" $root | quote }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          args:
            - operator
            - --all-namespaces
            - --bind-address
            - 0.0.0.0
            - --cache-dir
            - /var/cache/sealed-gitops
            - --lease-namespace
            - $(POD_NAMESPACE)
            {{- with $values.defaultServiceAccount }}
            # A Sync without serviceAccountName is applied as this account of its own namespace
            # (deploy/tenant creates it), never with the operator's rights, which hold no writes.
            - --default-service-account
            - {{ . | quote }}
            {{- end }}
            {{- if $shard }}
            # Only the objects labelled sealed-gitops.io/shard={{ $shard }}, and its own Lease.
            - --shard
            - {{ $shard }}
            {{- end }}
            {{- if not $values.leaderElection.enabled }}
            - --no-leader-election
            {{- end }}
            {{- with $values.leaderElection.leaseDuration }}
            - --lease-duration
            - {{ . | quote }}
            {{- end }}
            {{- /* the operator's defaults (8080, 9292) need no flag */}}
            {{- if ne (int $values.metrics.port) 8080 }}
            - --metrics-port
            - {{ $values.metrics.port | quote }}
            {{- end }}
            {{- if not $values.webhook.enabled }}
            - --webhook-port
            - "off"
            {{- else if ne (int $values.webhook.port) 9292 }}
            - --webhook-port
            - {{ $values.webhook.port | quote }}
            {{- end }}
            {{- if $values.ui.enabled }}
            - --ui-port
            - {{ $values.ui.port | quote }}
            {{- end }}
            {{- range $values.vaultAddresses }}
            - --vault-address
            - {{ . | quote }}
            {{- end }}
            {{- range $values.remoteClusterAddresses }}
            - --remote-cluster-address
            - {{ . | quote }}
            {{- end }}
            {{- range $values.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          env:
            # The Lease holder's identity: the pod's name, so `kubectl get lease` names the pod.
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: POD_NAMESPACE
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
            # The root filesystem is read-only: git and gpg write only below these two volumes.
            - name: HOME
              value: /tmp
            - name: XDG_CACHE_HOME
              value: /var/cache/sealed-gitops
            - name: TMPDIR
              value: /tmp
          ports:
            - {name: metrics, containerPort: {{ $values.metrics.port }}, protocol: TCP}
            {{- if $values.webhook.enabled }}
            - {name: webhook, containerPort: {{ $values.webhook.port }}, protocol: TCP}
            {{- end }}
            {{- if $values.ui.enabled }}
            - {name: ui, containerPort: {{ $values.ui.port }}, protocol: TCP}
            {{- end }}
          livenessProbe:
            httpGet: {path: /healthz, port: metrics}
            initialDelaySeconds: 10
            periodSeconds: 20
            timeoutSeconds: 5
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: /readyz, port: metrics}
            initialDelaySeconds: 3
            periodSeconds: 10
            timeoutSeconds: 5
          {{- with $values.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            privileged: false
            capabilities: {drop: [ALL]}
            seccompProfile: {type: RuntimeDefault}
          volumeMounts:
            - {name: git-cache, mountPath: /var/cache/sealed-gitops}
            - {name: tmp, mountPath: /tmp}
      volumes:
        # Git checkouts, one per remote; lost on restart, refetched (only encrypted files in it).
        - name: git-cache
          emptyDir: {sizeLimit: 2Gi}
        # Short-lived files: ssh identities and known_hosts for one fetch, GnuPG homes. Memory-backed
        # so that a deploy key never reaches a node's disk.
        - name: tmp
          emptyDir: {medium: Memory, sizeLimit: 64Mi}
{{- end -}}
