// Three storage accounts, each with one job:
//   host      AzureWebJobsStorage (keys, timer leases) and the Flex deployment package container
//   pipeline  raw uploads, Event Grid dead letters, the convert queue (+ poison), the ledger table,
//             the SeisComP bindings archive, the SeisComP VM's health file; identity-only (shared key disabled)
//   share     the Azure Files share the function app and the VM mount; SMB mounts authenticate
//             with the account key only, so this account keeps shared key enabled and holds
//             nothing else
// The pipeline never deletes raw data: lifecycle rules only move raw blobs to cooler tiers.

param location string
param tags object
param hostAccountName string
param pipelineAccountName string
param shareAccountName string
param deploymentContainerName string
param rawContainerName string
param deadLetterContainerName string
param bindingsContainerName string
param vmHealthContainerName string
param convertQueueName string
param ledgerTableName string
param shareName string
param rawCoolAfterDays int
param rawArchiveAfterDays int

@description('Share quota (GiB).')
param shareQuotaGiB int = 1024

// --- host account ----------------------------------------------------------------------------

resource hostAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43:Name computed in main.bicep (lowercase baseName + uniqueString, take 24); checkov cannot evaluate module parameters.
  // checkov:skip=CKV_AZURE_59:Public endpoint needed (offshore uploads, Flex Consumption without VNet integration); Entra ID + RBAC, no anonymous access.
  // checkov:skip=CKV_AZURE_206:Functions runtime state and deployment packages, recreated by a deployment; zone-redundant is enough.
  name: hostAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_ZRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    accessTier: 'Hot'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow' // checkov:skip=CKV_AZURE_35:Fields upload from offshore over the internet and Flex Consumption (no VNet integration) reaches storage publicly; access is Entra ID + RBAC.
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource hostBlob 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlob
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

// --- pipeline account ------------------------------------------------------------------------

resource pipelineAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43:Name computed in main.bicep (lowercase baseName + uniqueString, take 24); checkov cannot evaluate module parameters.
  // checkov:skip=CKV_AZURE_59:Public endpoint needed (offshore uploads, Flex Consumption without VNet integration); Entra ID + RBAC, no anonymous access.
  name: pipelineAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  // Raw data is the record: geo-redundant. RA-GRS (not GZRS) because blob archive tier,
  // used by the lifecycle rule when rawArchiveAfterDays > 0, is not offered on ZRS/GZRS accounts.
  sku: { name: 'Standard_RAGRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    accessTier: 'Hot'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow' // checkov:skip=CKV_AZURE_35:Fields upload from offshore over the internet and Flex Consumption (no VNet integration) reaches storage publicly; access is Entra ID + RBAC.
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource pipelineBlob 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: pipelineAccount
  name: 'default'
  properties: {
    // Soft delete and versioning: an accidental delete or overwrite of raw data is recoverable.
    deleteRetentionPolicy: { enabled: true, days: 30 }
    containerDeleteRetentionPolicy: { enabled: true, days: 30 }
    isVersioningEnabled: true
  }
}

resource rawContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: pipelineBlob
  name: rawContainerName
  properties: { publicAccess: 'None' }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: pipelineBlob
  name: deadLetterContainerName
  properties: { publicAccess: 'None' }
}

resource bindingsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: pipelineBlob
  name: bindingsContainerName
  properties: { publicAccess: 'None' }
}

// The SeisComP VM writes its provisioning health file here (its only write access); the
// function app's status endpoint reads it.
resource vmHealthContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: pipelineBlob
  name: vmHealthContainerName
  properties: { publicAccess: 'None' }
}

resource pipelineQueue 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: pipelineAccount
  name: 'default'
}

resource convertQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: pipelineQueue
  name: convertQueueName
}

// Declared, not left to the host: the app's roles on it (read + send) cannot create a queue,
// and its role assignment and the monitoring refer to it from day one. Like every container,
// queue and table here, the app never creates it in Azure (shared_code/settings.py:
// StorageConnection.provisioned).
resource convertPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: pipelineQueue
  name: '${convertQueueName}-poison'
}

resource pipelineTable 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: pipelineAccount
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: pipelineTable
  name: ledgerTableName
}

var coolAction = {
  tierToCool: { daysAfterCreationGreaterThan: rawCoolAfterDays }
}
var archiveTier = { tierToArchive: { daysAfterCreationGreaterThan: rawArchiveAfterDays } }
var archiveAction = rawArchiveAfterDays > 0 ? archiveTier : {}

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: pipelineAccount
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'raw-to-cooler-tiers'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [ 'blockBlob' ]
              prefixMatch: [ '${rawContainerName}/' ]
            }
            actions: {
              // Tiering only: no delete action, ever, on raw data.
              baseBlob: union(coolAction, archiveAction)
            }
          }
        }
        {
          name: 'deadletter-cleanup'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [ 'blockBlob' ]
              prefixMatch: [ '${deadLetterContainerName}/' ]
            }
            actions: {
              baseBlob: { delete: { daysAfterCreationGreaterThan: 90 } }
            }
          }
        }
      ]
    }
  }
}

// --- share account ---------------------------------------------------------------------------

resource shareAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43:Name computed in main.bicep (lowercase baseName + uniqueString, take 24); checkov cannot evaluate module parameters.
  // checkov:skip=CKV_AZURE_59:Public endpoint needed (offshore uploads, Flex Consumption without VNet integration); Entra ID + RBAC, no anonymous access.
  // checkov:skip=CKV_AZURE_206:Derived data only (decimated/MiniSEED), reproducible from raw; zone-redundant is enough.
  name: shareAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_ZRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true // SMB mounts (function app, VM) accept the account key only; it goes to Key Vault (keyvault.bicep).
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    accessTier: 'Hot'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow' // checkov:skip=CKV_AZURE_35:Fields upload from offshore over the internet and Flex Consumption (no VNet integration) reaches storage publicly; access is Entra ID + RBAC (and the key in Key Vault).
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource shareFileService 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = {
  parent: shareAccount
  name: 'default'
  properties: {
    shareDeleteRetentionPolicy: { enabled: true, days: 14 }
    protocolSettings: {
      smb: {
        // SMB 3.x only (always encrypted in transit with secure transfer required); the VM mounts
        // with 3.1.1 + seal. SMB 2.1 and unencrypted channels are refused.
        versions: 'SMB3.0;SMB3.1.1'
        channelEncryption: 'AES-128-CCM;AES-128-GCM;AES-256-GCM'
        authenticationMethods: 'NTLMv2;Kerberos'
      }
    }
  }
}

resource share 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-05-01' = {
  parent: shareFileService
  name: shareName
  properties: {
    accessTier: 'TransactionOptimized'
    shareQuota: shareQuotaGiB
    enabledProtocols: 'SMB'
  }
}

output hostAccountName string = hostAccount.name
output pipelineAccountName string = pipelineAccount.name
output shareAccountName string = shareAccount.name
output rawContainerName string = rawContainer.name
output deadLetterContainerName string = deadLetterContainer.name
output bindingsContainerName string = bindingsContainer.name
output vmHealthContainerName string = vmHealthContainer.name
output convertQueueName string = convertQueue.name
output convertPoisonQueueName string = convertPoisonQueue.name
output ledgerTableName string = ledgerTable.name
output shareName string = share.name
output deploymentContainerName string = deploymentContainer.name
