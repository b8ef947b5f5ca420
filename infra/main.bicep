// CCS-passive: everything the pipeline runs on, in one resource group.
//
//   storage      host account (Functions runtime + Flex deployment package), pipeline account
//                (raw, dead-letter, convert queue, ledger table; no shared key), share account
//                (the Azure Files share; shared key, because SMB mounts accept nothing else)
//   keyvault     the share account's key, read by the function app (Key Vault reference) and
//                by the SeisComP VM (managed identity)
//   monitoring   Log Analytics + workspace-based Application Insights
//   functionapp  Flex Consumption plan, function app, app settings, share mount, role assignments
//   eventing     Event Grid system topic on the pipeline account; the BlobCreated subscription to
//                `decimate` only when deployEventSubscription is true (after the code is published)
//   alerts       action group + alert rules
//   network      VNet, NSG, public IP for the SeisComP VM
//   seiscompVm   Ubuntu LTS VM: SeisComP seedlink + mseedscan on the share, WireGuard
//
// Deployed by infra/deploy.sh (see docs/deployment.md). No secret is a parameter or an output.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Names and place
// ---------------------------------------------------------------------------------------------

@description('Short name used to derive resource names (lowercase letters and digits).')
@minLength(3)
@maxLength(11)
param baseName string = 'ccspassive'

@description('Azure region (must offer the Flex Consumption plan).')
param location string = resourceGroup().location

@description('Tags put on every resource.')
param tags object = {
  workload: 'ccs-passive'
}

// ---------------------------------------------------------------------------------------------
// Pipeline contract (must match shared_code/settings.py and local.settings.sample.json;
// tests/test_infra_contract.py checks it)
// ---------------------------------------------------------------------------------------------

@description('Blob container the fields upload raw files to (RAW_CONTAINER).')
param rawContainerName string = 'raw'

@description('Queue between decimate and convert (CONVERT_QUEUE). The host adds <name>-poison.')
param convertQueueName string = 'convert'

@description('Table of the pipeline ledger (LEDGER_TABLE).')
param ledgerTableName string = 'ledger'

@description('Blob container Event Grid dead-letters undeliverable events to.')
param deadLetterContainerName string = 'deadletter'

@description('Azure Files share holding decimated/, mseed/, failed/, staging/, state/.')
param shareName string = 'ccs'

@description('Where the share is mounted in the function app (SHARE_ROOT) and on the VM.')
param shareMountPath string = '/mounts/ccs'

@description('Field configuration shipped in the code package (FIELDS_CONFIG).')
param fieldsConfig string = 'config/fields.toml'

@description('Names of the configured fields (config/fields.toml); one "no MiniSEED" alert series each.')
param fieldNames array

@description('Minutes a seam waits for its neighbour before it is closed (SEAM_TIMEOUT_MINUTES).')
param seamTimeoutMinutes int = 30

@description('Minutes before reconcile treats an unprocessed raw blob as missed (RECONCILE_GRACE_MINUTES).')
param reconcileGraceMinutes int = 30

@description('Days decimated/ and failed/ files are kept on the share (RETENTION_DAYS).')
param retentionDays int = 30

@description('Python version of the function app (Flex Consumption runtime).')
@allowed([
  '3.11'
])
param pythonVersion string = '3.11'

@description('Flex Consumption: largest number of instances.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory per instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption: always-ready instances kept for each of decimate and convert (0 = both scale to zero; a file after a quiet spell then waits for a cold start). Billed while idle: see docs/deployment.md.')
@minValue(0)
@maxValue(20)
param alwaysReadyInstances int = 0

// ---------------------------------------------------------------------------------------------
// Data lifecycle: the pipeline never deletes raw data; storage tiers it down
// ---------------------------------------------------------------------------------------------

@description('Days after upload that raw blobs move to the cool tier.')
@minValue(1)
param rawCoolAfterDays int = 30

@description('Days after upload that raw blobs move to the archive tier; 0 keeps them in cool.')
@minValue(0)
param rawArchiveAfterDays int = 0

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

@description('E-mail address the alerts go to.')
param alertEmail string

@description('Window (minutes) after which a field with no MiniSEED written raises an alert.')
@minValue(15)
@maxValue(2880)
param noMiniseedWindowMinutes int = 60

// ---------------------------------------------------------------------------------------------
// SeisComP VM and network
// ---------------------------------------------------------------------------------------------

@description('Deploy the SeisComP VM (and its network).')
param deploySeiscompVm bool = true

@description('VM size; small by default (seedlink + mseedscan need little).')
param vmSize string = 'Standard_B2s'

@description('Admin user name on the VM (SSH key only).')
param vmAdminUsername string = 'ccsadmin'

@description('SSH public key of the admin user (a public key is not a secret).')
param vmAdminSshPublicKey string

@description('CIDRs allowed to reach SSH (TCP 22) on the VM. Never 0.0.0.0/0.')
@minLength(1)
param adminCidrs array

@description('Public CIDRs of the WireGuard peers (allowed to reach the WireGuard UDP port).')
@minLength(1)
param wireguardPeerSourceCidrs array

@description('Tunnel subnet of the WireGuard overlay; SeedLink is served only to it.')
param wireguardSubnet string = '10.99.0.0/24'

@description('Tunnel address of the VM (inside wireguardSubnet), with prefix length.')
param wireguardAddress string = '10.99.0.1/24'

@description('WireGuard UDP port.')
param wireguardPort int = 51820

@description('WireGuard peers: [{ name, publicKey, allowedIps }]. Public keys only; the VM makes its own private key.')
param wireguardPeers array = []

@description('Address space of the VNet.')
param vnetAddressPrefix string = '10.42.0.0/24'

@description('Subnet of the VM.')
param vmSubnetPrefix string = '10.42.0.0/27'

@description('SeisComP release installed on the VM (pinned).')
param seiscompVersion string = '7.3.1'

@description('SHA-256 of the SeisComP release archive; empty skips the check (the VM logs a warning).')
param seiscompSha256 string = ''

// ---------------------------------------------------------------------------------------------
// Deployment order
// ---------------------------------------------------------------------------------------------

@description('Create the Event Grid subscription to `decimate`. False until the code is published: the subscription fails to create while the function does not exist.')
param deployEventSubscription bool = false

@description('Object id of the principal that runs deploy.sh (user or CI service principal); gets write access to the SeisComP bindings container. Empty: none.')
param deployerPrincipalId string = ''

@description('Type of deployerPrincipalId.')
@allowed([
  'User'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

// ---------------------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, resourceGroup().id, baseName))
var names = {
  hostStorage: take('${baseName}h${token}', 24)
  pipelineStorage: take('${baseName}p${token}', 24)
  shareStorage: take('${baseName}s${token}', 24)
  keyVault: take('kv-${baseName}-${token}', 24)
  workspace: 'log-${baseName}-${token}'
  appInsights: 'appi-${baseName}-${token}'
  plan: 'plan-${baseName}-${token}'
  functionApp: 'func-${baseName}-${token}'
  systemTopic: 'evgt-${baseName}-${token}'
  actionGroup: 'ag-${baseName}'
  vnet: 'vnet-${baseName}'
  nsg: 'nsg-${baseName}-seiscomp'
  publicIp: 'pip-${baseName}-seiscomp'
  vm: 'vm-${baseName}-seiscomp'
}
var deploymentContainerName = 'app-package'
var bindingsContainerName = 'seiscomp'
var bindingsBlobName = 'bindings.tar.gz'
var vmHealthContainerName = 'vmhealth'
var vmHealthBlobName = 'health.json'
var shareKeySecretName = 'share-account-key'

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    hostAccountName: names.hostStorage
    pipelineAccountName: names.pipelineStorage
    shareAccountName: names.shareStorage
    deploymentContainerName: deploymentContainerName
    rawContainerName: rawContainerName
    deadLetterContainerName: deadLetterContainerName
    bindingsContainerName: bindingsContainerName
    vmHealthContainerName: vmHealthContainerName
    convertQueueName: convertQueueName
    ledgerTableName: ledgerTableName
    shareName: shareName
    rawCoolAfterDays: rawCoolAfterDays
    rawArchiveAfterDays: rawArchiveAfterDays
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    logRetentionDays: logRetentionDays
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    name: names.keyVault
    shareAccountName: storage.outputs.shareAccountName
    secretName: shareKeySecretName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: tags
    planName: names.plan
    name: names.functionApp
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    alwaysReadyInstances: alwaysReadyInstances
    hostAccountName: storage.outputs.hostAccountName
    pipelineAccountName: storage.outputs.pipelineAccountName
    shareAccountName: storage.outputs.shareAccountName
    deploymentContainerName: deploymentContainerName
    rawContainerName: rawContainerName
    convertQueueName: convertQueueName
    ledgerTableName: ledgerTableName
    vmHealthContainerName: vmHealthContainerName
    vmHealthBlobName: vmHealthBlobName
    shareName: shareName
    shareMountPath: shareMountPath
    fieldsConfig: fieldsConfig
    seamTimeoutMinutes: seamTimeoutMinutes
    reconcileGraceMinutes: reconcileGraceMinutes
    retentionDays: retentionDays
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    keyVaultName: keyVault.outputs.name
    shareKeySecretName: shareKeySecretName
  }
}

module eventing 'modules/eventing.bicep' = {
  name: 'eventing'
  params: {
    location: location
    tags: tags
    systemTopicName: names.systemTopic
    pipelineAccountName: storage.outputs.pipelineAccountName
    rawContainerName: rawContainerName
    deadLetterContainerName: deadLetterContainerName
    functionAppName: functionApp.outputs.name
    functionName: 'decimate'
    deployEventSubscription: deployEventSubscription
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    actionGroupName: names.actionGroup
    alertEmail: alertEmail
    appInsightsId: monitoring.outputs.appInsightsId
    poisonQueueName: '${convertQueueName}-poison'
    fieldNames: fieldNames
    noMiniseedWindowMinutes: noMiniseedWindowMinutes
  }
}

module network 'modules/network.bicep' = if (deploySeiscompVm) {
  name: 'network'
  params: {
    location: location
    tags: tags
    vnetName: names.vnet
    nsgName: names.nsg
    publicIpName: names.publicIp
    vnetAddressPrefix: vnetAddressPrefix
    vmSubnetPrefix: vmSubnetPrefix
    adminCidrs: adminCidrs
    wireguardPeerSourceCidrs: wireguardPeerSourceCidrs
    wireguardSubnet: wireguardSubnet
    wireguardPort: wireguardPort
  }
}

module seiscompVm 'modules/seiscomp-vm.bicep' = if (deploySeiscompVm) {
  name: 'seiscomp-vm'
  params: {
    location: location
    tags: tags
    name: names.vm
    vmSize: vmSize
    adminUsername: vmAdminUsername
    adminSshPublicKey: vmAdminSshPublicKey
    subnetId: network!.outputs.vmSubnetId
    publicIpId: network!.outputs.publicIpId
    keyVaultName: keyVault.outputs.name
    shareKeySecretName: shareKeySecretName
    shareAccountName: storage.outputs.shareAccountName
    shareName: shareName
    shareMountPath: shareMountPath
    pipelineAccountName: storage.outputs.pipelineAccountName
    bindingsContainerName: bindingsContainerName
    bindingsBlobName: bindingsBlobName
    vmHealthContainerName: vmHealthContainerName
    vmHealthBlobName: vmHealthBlobName
    seiscompVersion: seiscompVersion
    seiscompSha256: seiscompSha256
    wireguardAddress: wireguardAddress
    wireguardSubnet: wireguardSubnet
    wireguardPort: wireguardPort
    wireguardPeers: wireguardPeers
  }
}

module deployerAccess 'modules/deployer-access.bicep' = if (!empty(deployerPrincipalId)) {
  name: 'deployer-access'
  params: {
    pipelineAccountName: storage.outputs.pipelineAccountName
    bindingsContainerName: bindingsContainerName
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// ---------------------------------------------------------------------------------------------
// What an operator needs (no keys, no connection strings)
// ---------------------------------------------------------------------------------------------

output functionAppName string = functionApp.outputs.name
output workbookId string = workbook.outputs.id
output functionAppHostName string = functionApp.outputs.defaultHostName
output pipelineStorageAccountName string = storage.outputs.pipelineAccountName
output rawContainerName string = rawContainerName
output convertQueueName string = convertQueueName
output ledgerTableName string = ledgerTableName
output shareStorageAccountName string = storage.outputs.shareAccountName
output shareName string = shareName
output shareMountPath string = shareMountPath
output bindingsContainerName string = bindingsContainerName
output bindingsBlobName string = bindingsBlobName
output vmHealthBlob string = '${vmHealthContainerName}/${vmHealthBlobName}'
output eventSubscriptionDeployed bool = deployEventSubscription
output seiscompVmName string = deploySeiscompVm ? seiscompVm!.outputs.name : ''
output seiscompPublicIp string = deploySeiscompVm ? network!.outputs.publicIpAddress : ''
output seedlinkAddress string = deploySeiscompVm ? '${split(wireguardAddress, '/')[0]}:18000' : ''
output wireguardEndpoint string = deploySeiscompVm ? '${network!.outputs.publicIpAddress}:${wireguardPort}' : ''
