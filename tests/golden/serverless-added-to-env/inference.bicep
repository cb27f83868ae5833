// Inference endpoint for an AI Toolkit fine-tuned model, rendered by azinfer.
// Plan: storageAccount=reuse, fileShare=reuse, logAnalytics=reuse, environment=update, environmentStorage=reuse, containerApp=create
// Deploy: az deployment group create -g <resource group> -f inference.bicep -p inference.parameters.json -p apiKey=<key>

@description('Shell commands that start the server; joined with \'; \' and run as /bin/bash -c.')
param defaultCommands array = [
  '# azinfer: start command of the inference container app (run as /bin/bash -c "<this script>").\n# Installs only from what \'azinfer deploy\' put on the share (.azinfer/dist): never\n# from a package index for azinfer itself. The first replica installs it once into\n# .azinfer/env on the share; other replicas and restarts reuse that (see\n# azinfer/serve/bootstrap.py). Without a wheel on the share, an image that has\n# azinfer installed serves with it.\nset -euo pipefail\nMOUNT="\${AZINFER_MOUNT:-/mount}"\nPYTHON="\${AZINFER_PYTHON:-python3}"\nDIST="$MOUNT/.azinfer/dist"\nexport AZINFER_MOUNT="$MOUNT" AZINFER_PORT="\${AZINFER_PORT:-7860}" HF_HUB_OFFLINE=1\nif [ ! -f "$DIST/CURRENT" ] && ! "$PYTHON" -c "import azinfer.serve" >/dev/null 2>&1; then\n  # A new share gets the wheel only after the ARM deployment that made this app returns, and that\n  # deployment waits for this replica\'s startup probe: answer /health (and 503 on /ready) meanwhile.\n  "$PYTHON" -c \'\nimport http.server, os, sys, threading, time\ndist, wait = sys.argv[1], float(os.environ.get("AZINFER_WHEEL_WAIT_SECONDS", "3600"))\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        ok = self.path == "/health"\n        self.send_response(200 if ok else 503); self.end_headers()\n        self.wfile.write(b"{\\"status\\": \\"waiting for azinfer deploy\\"}" if ok else b"")\n    def log_message(self, *args): pass\nif wait > 0:\n    server = http.server.ThreadingHTTPServer(("", int(os.environ["AZINFER_PORT"])), H)\n    threading.Thread(target=server.serve_forever, daemon=True).start()\n    print(f"azinfer: waiting up to {wait:g} s for azinfer deploy to put the wheel in {dist}", flush=True)\ndeadline, said = time.monotonic() + wait, time.monotonic()\nwhile not os.path.isfile(os.path.join(dist, "CURRENT")):\n    if time.monotonic() >= deadline:\n        sys.exit(1)\n    if time.monotonic() - said >= 60:\n        print(f"azinfer: still waiting for the wheel in {dist}", flush=True); said = time.monotonic()\n    time.sleep(1)\nprint("azinfer: the wheel arrived", flush=True)\n\' "$DIST" || { echo "azinfer: error: azinfer is neither on the share ($DIST) nor in the image: run \'azinfer deploy\'" >&2; exit 1; }\nfi\nif [ -f "$DIST/CURRENT" ]; then\n  WHEEL="$DIST/$(tr -d \'[:space:]/\' < "$DIST/CURRENT")"\n  echo "azinfer: starting from $WHEEL"\n  exec env PYTHONPATH="$WHEEL" "$PYTHON" -m azinfer.serve.bootstrap "$WHEEL"\nfi\necho "azinfer: serving with the image\'s azinfer, the model under $MOUNT, port $AZINFER_PORT"\nexec "$PYTHON" -m azinfer.serve\n'
]

// Not used by this plan; declared so that inference.parameters.json deploys as it is.
@description('Maximum node count of the dedicated GPU workload profile.')
@minValue(1)
#disable-next-line no-unused-params
param maximumInstanceCount int = 2

@description('Azure region; by default the resource group\'s.')
param location string = resourceGroup().location

@description('Storage account name; by default aistorage<suffix>. Azure\'s rule: 3 to 24 characters, lowercase letters and digits only (and unique across Azure).')
@minLength(3)
@maxLength(24)
param storageAccountName string = 'aistorage${substring(uniqueString(resourceGroup().id), 0, 5)}'

@description('File share name; by default aifileshare<suffix>. Azure\'s rule: 3 to 63 characters, lowercase letters, digits and single hyphens, starting and ending with a letter or digit.')
@minLength(3)
@maxLength(63)
param fileShareName string = 'aifileshare${substring(uniqueString(resourceGroup().id), 0, 5)}'

@description('Log Analytics workspace name; by default ailog<suffix>. Azure\'s rule: 4 to 63 characters, letters, digits and hyphens, starting and ending with a letter or digit.')
@minLength(4)
@maxLength(63)
param acaLogAnalyticsName string = 'ailog${substring(uniqueString(resourceGroup().id), 0, 5)}'

@description('Container Apps environment name; by default aienv<suffix>. Azure\'s rule: 2 to 60 characters, lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit.')
@minLength(2)
@maxLength(60)
param acaEnvironmentName string = 'aienv${substring(uniqueString(resourceGroup().id), 0, 5)}'

@description('Environment storage name; by default aienvstorage<suffix>. Azure\'s rule: 2 to 32 characters, lowercase letters, digits and single hyphens, starting and ending with a letter or digit.')
@minLength(2)
@maxLength(32)
param acaEnvironmentStorageName string = 'aienvstorage${substring(uniqueString(resourceGroup().id), 0, 5)}'

@description('Container app name; by default aiacaapp<suffix>. Azure\'s rule: 2 to 32 characters, lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit.')
@minLength(2)
@maxLength(32)
param acaAppName string = 'aiacaapp${substring(uniqueString(resourceGroup().id), 0, 5)}'

@description('GPU workload profile type.')
@allowed([
  'NC24-A100'
  'Consumption-GPU-NC24-A100'
  'Consumption-GPU-NC8as-T4'
])
param gpuProfileType string = 'Consumption-GPU-NC8as-T4'

@description('Minimum replicas; by default 1 on a dedicated profile, 0 on a serverless one.')
@minValue(0)
param minReplicas int = contains([
  'Consumption-GPU-NC24-A100'
  'Consumption-GPU-NC8as-T4'
], gpuProfileType) ? 0 : 1

@description('Maximum replicas.')
@minValue(1)
param maxReplicas int = 1

@description('Container image.')
param image string = 'docker.io/vllm/vllm-openai:v0.32.0-cu129'

@description('Port the server listens on.')
@minValue(1)
@maxValue(65535)
param targetPort int = 7860

@description('apiKey: the API needs \'Authorization: Bearer <key>\'; none: public.')
@allowed([
  'apiKey'
  'none'
])
param authentication string = 'apiKey'

@description('The API key (a Container Apps secret), used when authentication is apiKey. Pass it at every deployment (azinfer passes the app\'s current key); never put it in a file.')
@secure()
param apiKey string

@description('Registry the image is pulled from with credentials (e.g. myacr.azurecr.io); empty: an anonymous pull.')
param registryServer string = ''

@description('User name for registryServer (with registryPassword).')
param registryUsername string = ''

@description('Resource ID of a user-assigned managed identity with AcrPull on registryServer (instead of a user name).')
param registryIdentity string = ''

@description('Password for registryUsername (a Container Apps secret). Pass it at every deployment that sets registryUsername (azinfer passes AZINFER_REGISTRY_PASSWORD, else the app\'s current one); never put it in a file.')
@secure()
param registryPassword string = ''

var tags = {
  'managed-by': 'azinfer'
  'azinfer-role': 'inference'
  'azinfer-created': 'true'
}
var gpuProfiles = {
  'NC24-A100': {
    name: 'GPU'
    cpu: 24
    memory: '220Gi'
    serverless: false
  }
  'Consumption-GPU-NC24-A100': {
    name: 'NC24-A100'
    cpu: 24
    memory: '220Gi'
    serverless: true
  }
  'Consumption-GPU-NC8as-T4': {
    name: 'NC8as-T4'
    cpu: 8
    memory: '56Gi'
    serverless: true
  }
}
var gpu = gpuProfiles[gpuProfileType]
var useApiKey = authentication == 'apiKey'
var registries = empty(registryServer) ? [] : [
  empty(registryIdentity) ? {
    server: registryServer
    username: registryUsername
    passwordSecretRef: 'azinfer-registry-password'
  } : {
    server: registryServer
    identity: registryIdentity
  }
]
var azinferStart = [
  '# azinfer: start command of the inference container app (run as /bin/bash -c "<this script>").\n# Installs only from what \'azinfer deploy\' put on the share (.azinfer/dist): never\n# from a package index for azinfer itself. The first replica installs it once into\n# .azinfer/env on the share; other replicas and restarts reuse that (see\n# azinfer/serve/bootstrap.py). Without a wheel on the share, an image that has\n# azinfer installed serves with it.\nset -euo pipefail\nMOUNT="\${AZINFER_MOUNT:-/mount}"\nPYTHON="\${AZINFER_PYTHON:-python3}"\nDIST="$MOUNT/.azinfer/dist"\nexport AZINFER_MOUNT="$MOUNT" AZINFER_PORT="\${AZINFER_PORT:-7860}" HF_HUB_OFFLINE=1\nif [ ! -f "$DIST/CURRENT" ] && ! "$PYTHON" -c "import azinfer.serve" >/dev/null 2>&1; then\n  # A new share gets the wheel only after the ARM deployment that made this app returns, and that\n  # deployment waits for this replica\'s startup probe: answer /health (and 503 on /ready) meanwhile.\n  "$PYTHON" -c \'\nimport http.server, os, sys, threading, time\ndist, wait = sys.argv[1], float(os.environ.get("AZINFER_WHEEL_WAIT_SECONDS", "3600"))\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        ok = self.path == "/health"\n        self.send_response(200 if ok else 503); self.end_headers()\n        self.wfile.write(b"{\\"status\\": \\"waiting for azinfer deploy\\"}" if ok else b"")\n    def log_message(self, *args): pass\nif wait > 0:\n    server = http.server.ThreadingHTTPServer(("", int(os.environ["AZINFER_PORT"])), H)\n    threading.Thread(target=server.serve_forever, daemon=True).start()\n    print(f"azinfer: waiting up to {wait:g} s for azinfer deploy to put the wheel in {dist}", flush=True)\ndeadline, said = time.monotonic() + wait, time.monotonic()\nwhile not os.path.isfile(os.path.join(dist, "CURRENT")):\n    if time.monotonic() >= deadline:\n        sys.exit(1)\n    if time.monotonic() - said >= 60:\n        print(f"azinfer: still waiting for the wheel in {dist}", flush=True); said = time.monotonic()\n    time.sleep(1)\nprint("azinfer: the wheel arrived", flush=True)\n\' "$DIST" || { echo "azinfer: error: azinfer is neither on the share ($DIST) nor in the image: run \'azinfer deploy\'" >&2; exit 1; }\nfi\nif [ -f "$DIST/CURRENT" ]; then\n  WHEEL="$DIST/$(tr -d \'[:space:]/\' < "$DIST/CURRENT")"\n  echo "azinfer: starting from $WHEEL"\n  exec env PYTHONPATH="$WHEEL" "$PYTHON" -m azinfer.serve.bootstrap "$WHEEL"\nfi\necho "azinfer: serving with the image\'s azinfer, the model under $MOUNT, port $AZINFER_PORT"\nexec "$PYTHON" -m azinfer.serve\n'
]

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2025-07-01' existing = {
  name: acaLogAnalyticsName
}

resource environment 'Microsoft.App/managedEnvironments@2026-01-01' = {
  name: acaEnvironmentName
  location: location
  // An existing resource keeps its own tags (an update never adds azinfer's).
  tags: {}
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
    // The existing environment keeps every profile it has (plus the GPU profile the plan adds).
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
      {
        name: 'GPU'
        workloadProfileType: 'NC24-A100'
      }
      {
        name: 'NC8as-T4'
        workloadProfileType: 'Consumption-GPU-NC8as-T4'
      }
    ]
  }
}

resource app 'Microsoft.App/containerApps@2026-01-01' = {
  name: acaAppName
  location: location
  tags: tags
  properties: {
    managedEnvironmentId: environment.id
    // The existing environment's own profile of that type, found (or added) by the planner.
    workloadProfileName: 'NC8as-T4'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: targetPort
        transport: 'auto'
        allowInsecure: false
      }
      secrets: concat(useApiKey ? [
        {
          name: 'azinfer-api-key'
          value: apiKey
        }
      ] : [], empty(registryUsername) ? [] : [
        {
          name: 'azinfer-registry-password'
          value: registryPassword
        }
      ])
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'inference'
          image: image
          command: [
            '/bin/bash'
            '-c'
            join(defaultCommands, '; ')
          ]
          env: concat([
            {
              name: 'AZINFER_MOUNT'
              value: '/mount'
            }
            {
              name: 'AZINFER_PORT'
              value: string(targetPort)
            }
            {
              name: 'AZINFER_ADAPTER_POLL'
              value: '5'
            }
          ], useApiKey ? [
            {
              name: 'AZINFER_API_KEY'
              secretRef: 'azinfer-api-key'
            }
          ] : [
            {
              name: 'AZINFER_INSECURE_NO_AUTH'
              value: 'true'
            }
          ])
          resources: {
            cpu: gpu.cpu
            memory: gpu.memory
          }
          probes: (defaultCommands == azinferStart) ? [
            {
              type: 'Startup'
              httpGet: {
                path: '/health'
                port: targetPort
              }
              initialDelaySeconds: 10
              periodSeconds: 60
              failureThreshold: 10
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/health'
                port: targetPort
              }
              periodSeconds: 30
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/ready'
                port: targetPort
              }
              periodSeconds: 10
              failureThreshold: 3
            }
          ] : [
            {
              type: 'Startup'
              tcpSocket: {
                port: targetPort
              }
              initialDelaySeconds: 10
              periodSeconds: 240
              failureThreshold: 10
            }
            {
              type: 'Liveness'
              tcpSocket: {
                port: targetPort
              }
              periodSeconds: 30
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              tcpSocket: {
                port: targetPort
              }
              periodSeconds: 10
              failureThreshold: 3
            }
          ]
          volumeMounts: [
            {
              volumeName: 'model-share'
              mountPath: '/mount'
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: (defaultCommands == azinferStart) ? [
          {
            name: 'http-batch'
            http: {
              metadata: {
                concurrentRequests: '16'
              }
            }
          }
        ] : []
      }
      volumes: [
        {
          name: 'model-share'
          storageType: 'AzureFile'
          storageName: acaEnvironmentStorageName
        }
      ]
    }
  }
}

output SUBSCRIPTION_ID string = subscription().subscriptionId
output RESOURCE_GROUP_NAME string = resourceGroup().name
output STORAGE_ACCOUNT_NAME string = storageAccountName
output FILE_SHARE_NAME string = fileShareName
output ACA_APP_NAME string = app.name
output ACA_APP_ENDPOINT string = app.properties.configuration.ingress.fqdn
