// Function app on the Flex Consumption plan (Linux, Python), system-assigned identity,
// identity-based connections, least-privilege roles, the Azure Files mount.
//
// App settings are one-to-one with local.settings.sample.json "Values" (read by
// shared_code/settings.py), with two documented differences:
//   * connection strings become identity-based settings: AzureWebJobsStorage__* for the host,
//     PIPELINE_STORAGE__* for the pipeline's blob/queue/table clients and the queue trigger;
//   * FUNCTIONS_WORKER_RUNTIME and AzureWebJobsFeatureFlags are not app settings on Flex
//     Consumption: the runtime is functionAppConfig.runtime, worker indexing is the default.
// SHARE_ACCOUNT_KEY is infrastructure only: the Key Vault reference the share mount resolves
// through @AppSettingRef(); the code never reads it.

param location string
param tags object
param planName string
param name string
param pythonVersion string
param maximumInstanceCount int
param instanceMemoryMB int
param alwaysReadyInstances int
param hostAccountName string
param pipelineAccountName string
param shareAccountName string
param deploymentContainerName string
param rawContainerName string
param convertQueueName string
param ledgerTableName string
param vmHealthContainerName string
param vmHealthBlobName string
param shareName string
param shareMountPath string
param fieldsConfig string
param seamTimeoutMinutes int
param reconcileGraceMinutes int
param retentionDays int
param appInsightsConnectionString string
param keyVaultName string
param shareKeySecretName string

var shareKeySetting = 'SHARE_ACCOUNT_KEY'

// Always-ready instances (scaleAndConcurrency.alwaysReady: [{ name, instanceCount }], ARM type
// FunctionsAlwaysReadyConfig). Flex Consumption scales per function: only HTTP, Durable and
// blob (Event Grid) triggers form groups ('http', 'durable', 'blob'); every other function is
// named 'function:<FUNCTION_NAME>' (learn.microsoft.com/azure/azure-functions/
// flex-consumption-how-to#set-always-ready-instance-counts). decimate (an Event Grid trigger,
// not a blob trigger) and convert (a queue trigger) are the two on a file's path.
var pipelineFunctions = [
  'decimate'
  'convert'
]
var alwaysReady = [for fn in pipelineFunctions: {
  name: 'function:${fn}'
  instanceCount: alwaysReadyInstances
}]
var storageSuffix = environment().suffixes.storage

// Built-in role ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage
var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  blobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  queueDataReader: '19e7f393-937e-4f77-808e-94535e297925'
  queueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource hostAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostAccountName
}

resource pipelineAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: pipelineAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource raw 'containers' existing = {
      name: rawContainerName
    }

    resource vmHealth 'containers' existing = {
      name: vmHealthContainerName
    }
  }

  resource queueService 'queueServices' existing = {
    name: 'default'

    resource convert 'queues' existing = {
      name: convertQueueName
    }

    resource convertPoison 'queues' existing = {
      name: '${convertQueueName}-poison'
    }
  }

  resource tableService 'tableServices' existing = {
    name: 'default'

    resource ledger 'tables' existing = {
      name: ledgerTableName
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName

  resource shareKey 'secrets' existing = {
    name: shareKeySecretName
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy of Flex Consumption is region-dependent; set zoneRedundant where offered.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:Event Grid and the operators' HTTP calls present no client certificates.
  // checkov:skip=CKV_AZURE_222:Public endpoint needed for Event Grid delivery and the health/status HTTP functions (function keys).
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales per event; there is no fixed instance count to set.
  // checkov:skip=CKV_AZURE_213:Flex Consumption has no App Service health check; the `health` function plus alerts cover it.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: 'SystemAssigned'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReadyInstances > 0 ? alwaysReady : []
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // One-to-one with local.settings.sample.json "Values" (see the header for the mapping).
      appSettings: [
        // Host storage, identity-based (instead of the AzureWebJobsStorage connection string).
        { name: 'AzureWebJobsStorage__accountName', value: hostAccount.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        // Pipeline storage, identity-based (instead of the PIPELINE_STORAGE connection string).
        { name: 'PIPELINE_STORAGE__blobServiceUri', value: 'https://${pipelineAccount.name}.blob.${storageSuffix}' }
        { name: 'PIPELINE_STORAGE__queueServiceUri', value: 'https://${pipelineAccount.name}.queue.${storageSuffix}' }
        { name: 'PIPELINE_STORAGE__tableServiceUri', value: 'https://${pipelineAccount.name}.table.${storageSuffix}' }
        { name: 'PIPELINE_STORAGE__credential', value: 'managedidentity' }
        { name: 'RAW_CONTAINER', value: rawContainerName }
        { name: 'CONVERT_QUEUE', value: convertQueueName }
        { name: 'LEDGER_TABLE', value: ledgerTableName }
        { name: 'VM_HEALTH_CONTAINER', value: vmHealthContainerName }
        { name: 'VM_HEALTH_BLOB', value: vmHealthBlobName }
        { name: 'SHARE_ROOT', value: shareMountPath }
        { name: 'FIELDS_CONFIG', value: fieldsConfig }
        { name: 'SEAM_TIMEOUT_MINUTES', value: string(seamTimeoutMinutes) }
        { name: 'RECONCILE_GRACE_MINUTES', value: string(reconcileGraceMinutes) }
        { name: 'RETENTION_DAYS', value: string(retentionDays) }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        // Infrastructure only: the share key, resolved by the platform for the mount below.
        { name: shareKeySetting, value: '@Microsoft.KeyVault(SecretUri=${vault::shareKey.properties.secretUri})' }
      ]
    }
  }
}

// Deployments go through Entra ID (az CLI / OIDC), never publishing profiles.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

// --- role assignments: exactly the data roles the app uses -------------------------------------
// tests/test_infra_roles.py derives what each scope needs from the SDK calls in shared_code/ and
// the Functions host's documented needs, and checks these assignments are a least cover.

// Host storage (AzureWebJobsStorage), what the Functions runtime needs: blobs and containers
// (keys, timer leases, the Flex deployment package: Storage Blob Data Owner, "Connecting to host
// storage with an identity") and tables for its diagnostic events (AZFD0003: read, write, delete,
// add and create in Table Storage; the runtime creates those tables itself, hence account scope).
// No queue role: the host uses queues on this account only for blob triggers, and there are none.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostAccount.id, site.id, roles.blobDataOwner)
  scope: hostAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataOwner)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostAccount.id, site.id, roles.tableDataContributor)
  scope: hostAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.tableDataContributor)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Raw container: read only (decimate reads blobs, reconcile lists them). The pipeline cannot
// modify or delete raw data, by construction.
resource rawReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::blobService::raw.id, site.id, roles.blobDataReader)
  scope: pipelineAccount::blobService::raw
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataReader)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The SeisComP VM's health file (published by the VM): read only, for the status endpoint.
resource vmHealthReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::blobService::vmHealth.id, site.id, roles.blobDataReader)
  scope: pipelineAccount::blobService::vmHealth
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataReader)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Convert queue: enqueue (decimate, replay), and the host's queue trigger: receive, delete,
// release a failed message (WebJobs QueueProcessor.ReleaseMessageAsync: Update Message), read
// the queue's length (scaling, health). Update Message needs messages/write, which among the
// queue roles only Queue Data Contributor grants.
resource convertQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::queueService::convert.id, site.id, roles.queueDataContributor)
  scope: pipelineAccount::queueService::convert
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueDataContributor)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Poison queue: the host adds a message after maxDequeueCount failures (WebJobs
// QueueProcessor.CopyMessageToPoisonQueueAsync sends first and creates the queue only on
// QueueNotFound; it is declared in storage.bicep); reconcile and status read its length,
// status peeks its messages (Peek Messages: messages/read, in Queue Data Reader).
// Nothing in the app receives or deletes poison messages.
resource poisonQueueReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::queueService::convertPoison.id, site.id, roles.queueDataReader)
  scope: pipelineAccount::queueService::convertPoison
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueDataReader)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource poisonQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::queueService::convertPoison.id, site.id, roles.queueDataMessageSender)
  scope: pipelineAccount::queueService::convertPoison
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueDataMessageSender)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Ledger table: read, insert and update entities. The table is declared in storage.bicep: a
// role scoped to the table cannot create it (Create Table is authorised at account scope).
resource ledgerContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::tableService::ledger.id, site.id, roles.tableDataContributor)
  scope: pipelineAccount::tableService::ledger
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.tableDataContributor)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The share key secret, for the Key Vault reference behind the mount.
resource shareKeyReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::shareKey.id, site.id, roles.keyVaultSecretsUser)
  scope: vault::shareKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- the share mount ---------------------------------------------------------------------------

// SMB mounts authenticate with the account key only; the key is resolved at run time from the
// SHARE_ACCOUNT_KEY app setting, itself a Key Vault reference. The mount path is SHARE_ROOT.
resource shareMount 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:Child config resource (the storage mount), not a site; see the site above.
  // checkov:skip=CKV_AZURE_63:Child config resource, not a site; logs go to Application Insights.
  // checkov:skip=CKV_AZURE_65:Child config resource, not a site; logs go to Application Insights.
  // checkov:skip=CKV_AZURE_66:Child config resource, not a site; logs go to Application Insights.
  // checkov:skip=CKV_AZURE_80:Child config resource, not a site; Python app (no .NET).
  // checkov:skip=CKV_AZURE_88:Child config resource: this resource is the Azure Files mount.
  // checkov:skip=CKV_AZURE_222:Child config resource, not a site; see the site above.
  parent: site
  name: 'azurestorageaccounts'
  properties: {
    ccs: {
      type: 'AzureFiles'
      protocol: 'Smb'
      accountName: shareAccountName
      shareName: shareName
      mountPath: shareMountPath
      accessKey: '@AppSettingRef(${shareKeySetting})'
    }
  }
  dependsOn: [
    shareKeyReader
  ]
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output principalId string = site.identity.principalId
