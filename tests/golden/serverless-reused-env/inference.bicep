// Inference endpoint for an AI Toolkit fine-tuned model, rendered by azinfer.
// Plan: storageAccount=reuse, fileShare=reuse, logAnalytics=reuse, environment=reuse, environmentStorage=reuse, containerApp=create
// Deploy: az deployment group create -g <resource group> -f inference.bicep -p inference.parameters.json -p apiKey=<key>

@description('Shell commands that start the server; joined with \'; \' and run as /bin/bash -c.')
param defaultCommands array = [
  '# azinfer: start command of the inference container app (run as /bin/bash -c "<this script>").\n# The AI Toolkit\'s start command reinstalled torch and friends with pip on every\n# replica start. This one runs azinfer from the image when it is there;\n# otherwise it installs azinfer[serve] once into a virtual environment on the\n# share, keyed by azinfer and Python versions, and reuses it on later starts.\n# The environment sees the image\'s site-packages, so the image\'s torch is kept.\nset -euo pipefail\nAZINFER_VERSION="\${AZINFER_VERSION:-0.1.0}"\nMOUNT="\${AZINFER_MOUNT:-/mount}"\nPYTHON="\${AZINFER_PYTHON:-python3}"\nexport AZINFER_MOUNT="$MOUNT" AZINFER_PORT="\${AZINFER_PORT:-7860}" HF_HUB_OFFLINE=1\nif ! "$PYTHON" -c "import azinfer.serve.api" >/dev/null 2>&1; then\n  PY_TAG="$("$PYTHON" -c \'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")\')"\n  VENV="$MOUNT/.azinfer/venv-$AZINFER_VERSION-$PY_TAG"\n  if [ ! -f "$VENV/.complete" ]; then\n    echo "azinfer: installing azinfer[serve]==$AZINFER_VERSION into $VENV (once)"\n    BUILD="$VENV.building.$$"\n    "$PYTHON" -m venv --system-site-packages "$BUILD"\n    "$BUILD/bin/python" -m pip install --no-cache-dir "\${AZINFER_PIP_SPEC:-azinfer[serve]==$AZINFER_VERSION}"\n    touch "$BUILD/.complete"\n    # Another replica may have finished first; keep its environment then.\n    mv -T "$BUILD" "$VENV" 2>/dev/null || rm -rf "$BUILD"\n  fi\n  PYTHON="$VENV/bin/python"\nfi\necho "azinfer: serving the model under $MOUNT on port $AZINFER_PORT"\nexec "$PYTHON" -m azinfer.serve\n'
]

@description('Maximum node count of the dedicated GPU workload profile.')
@minValue(1)
param maximumInstanceCount int = 2

@description('Azure region; null means the resource group\'s.')
param location string?

@description('Storage account name; null means aistorage<suffix>.')
param storageAccountName string?

@description('File share name; null means aifileshare<suffix>.')
param fileShareName string?

@description('Log Analytics workspace name; null means ailog<suffix>.')
param acaLogAnalyticsName string?

@description('Container Apps environment name; null means aienv<suffix>.')
param acaEnvironmentName string?

@description('Environment storage name; null means aienvstorage<suffix>.')
param acaEnvironmentStorageName string?

@description('Container app name; null means aiacaapp<suffix>.')
param acaAppName string?

@description('GPU workload profile type.')
@allowed([
  'NC24-A100'
  'Consumption-GPU-NC24-A100'
  'Consumption-GPU-NC8as-T4'
])
param gpuProfileType string = 'NC24-A100'

@description('Minimum replicas; null means 1 on a dedicated profile, 0 on a serverless one.')
@minValue(0)
param minReplicas int?

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

@description('The API key (a Container Apps secret). Pass it at deployment; never put it in a file.')
@secure()
param apiKey string = newGuid()

var resourceSuffix = substring(uniqueString(resourceGroup().id), 0, 5)
var location_ = location ?? resourceGroup().location
var storageName = storageAccountName ?? 'aistorage${resourceSuffix}'
var shareName = fileShareName ?? 'aifileshare${resourceSuffix}'
var logAnalyticsName = acaLogAnalyticsName ?? 'ailog${resourceSuffix}'
var environmentName = acaEnvironmentName ?? 'aienv${resourceSuffix}'
var environmentStorageName = acaEnvironmentStorageName ?? 'aienvstorage${resourceSuffix}'
var appName = acaAppName ?? 'aiacaapp${resourceSuffix}'
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
// The reused environment's own profile of that type, found by the planner.
var gpuProfileName = 'a100'
// Serverless GPU profiles have no node counts; dedicated ones scale between 0 and maximumInstanceCount.
var workloadProfiles = [
  {
    name: 'Consumption'
    workloadProfileType: 'Consumption'
  }
  gpu.serverless ? {
    name: gpu.name
    workloadProfileType: gpuProfileType
  } : {
    name: gpu.name
    workloadProfileType: gpuProfileType
    minimumCount: 0
    maximumCount: maximumInstanceCount
  }
]
var minReplicas_ = minReplicas ?? (gpu.serverless ? 0 : 1)
var useApiKey = authentication == 'apiKey'
var tags = {
  'managed-by': 'azinfer'
  'azinfer-role': 'inference'
}

resource environment 'Microsoft.App/managedEnvironments@2026-01-01' existing = {
  name: environmentName
}

resource app 'Microsoft.App/containerApps@2026-01-01' = {
  name: appName
  location: location_
  tags: tags
  properties: {
    managedEnvironmentId: environment.id
    workloadProfileName: gpuProfileName
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: targetPort
        transport: 'auto'
        allowInsecure: false
      }
      secrets: useApiKey ? [
        {
          name: 'azinfer-api-key'
          value: apiKey
        }
      ] : []
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
          probes: [
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
        minReplicas: minReplicas_
        maxReplicas: maxReplicas
      }
      volumes: [
        {
          name: 'model-share'
          storageType: 'AzureFile'
          storageName: environmentStorageName
        }
      ]
    }
  }
}

output SUBSCRIPTION_ID string = subscription().subscriptionId
output RESOURCE_GROUP_NAME string = resourceGroup().name
output STORAGE_ACCOUNT_NAME string = storageName
output FILE_SHARE_NAME string = shareName
output ACA_APP_NAME string = appName
output ACA_APP_ENDPOINT string = app.properties.configuration.ingress.fqdn
