// Key Vault holding the share account's key. The key goes from listKeys() straight into the
// secret inside ARM: it is never a parameter, an output, or a plain app setting. Readers
// (function app, VM) get "Key Vault Secrets User" on this one secret, in their own modules.

param location string
param tags object
param name string
param shareAccountName string
param secretName string

@description('Expiry of the secret (Unix seconds); a redeploy renews it. Rotate the key with `az storage account keys renew` and redeploy.')
param secretExpiry int = dateTimeToEpoch(dateTimeAdd(utcNow(), 'P180D'))

resource shareAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: shareAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_189:Key Vault references of a Flex Consumption app without VNet integration, and the VM, use the public endpoint; RBAC-only vault.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Key Vault references of a Flex Consumption app without VNet integration, and the VM's
      // managed-identity calls, reach the vault over its public endpoint; access is RBAC-only.
      // checkov:skip=CKV_AZURE_109:See above: the public endpoint is needed; RBAC-only vault.
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource shareKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  properties: {
    contentType: 'Azure Files account key (SMB mount of ${shareAccountName})'
    value: shareAccount.listKeys().keys[0].value
    attributes: {
      enabled: true
      exp: secretExpiry
    }
  }
}

output name string = vault.name
output id string = vault.id
output secretName string = shareKey.name
output secretUri string = shareKey.properties.secretUri
