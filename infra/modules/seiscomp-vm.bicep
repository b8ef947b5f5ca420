// The SeisComP VM: Ubuntu LTS, SSH keys only, system-assigned identity.
//
// customData is the static cloud-init file infra/cloud-init/seiscomp.yaml (installs packages,
// the helper scripts and systemd units). Everything deployment-specific (account names, the
// SeisComP release, WireGuard settings) is in userData, an environment file the VM reads from
// the instance metadata service at boot. userData can change on redeploy; customData cannot
// (ARM rejects a change of customData on an existing VM), which is why nothing that varies
// goes into it.
//
// No secret is passed in: the VM fetches the share key from Key Vault and the bindings archive
// from blob storage with its managed identity, publishes its health file the same way, and
// generates its WireGuard private key itself.

param location string
param tags object
param name string
param vmSize string
param adminUsername string
param adminSshPublicKey string
param subnetId string
param publicIpId string
param keyVaultName string
param shareKeySecretName string
param shareAccountName string
param shareName string
param shareMountPath string
param pipelineAccountName string
param bindingsContainerName string
param bindingsBlobName string
@description('Container the VM publishes its provisioning health file to (the function app reads it).')
param vmHealthContainerName string
param vmHealthBlobName string
param seiscompVersion string
param seiscompSha256 string
param wireguardAddress string
param wireguardSubnet string
param wireguardPort int
param wireguardPeers array

@description('Ubuntu LTS image.')
param imageReference object = {
  publisher: 'Canonical'
  offer: 'ubuntu-24_04-lts'
  sku: 'server'
  version: 'latest'
}

@description('Ubuntu release the SeisComP binary package is built for (must match the image).')
param seiscompPlatform string = 'ubuntu24.04-x86_64'

var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  blobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
}
var storageSuffix = environment().suffixes.storage

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName

  resource shareKey 'secrets' existing = {
    name: shareKeySecretName
  }
}

resource pipelineAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: pipelineAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource bindings 'containers' existing = {
      name: bindingsContainerName
    }

    resource vmHealth 'containers' existing = {
      name: vmHealthContainerName
    }
  }
}

// One "<publicKey> <allowedIps>" line per peer; public keys are not secrets.
var peerLines = [for peer in wireguardPeers: '${peer.publicKey} ${peer.allowedIps}']

var vmEnvironmentLines = [
  '# CCS-passive SeisComP VM settings (userData, read by /usr/local/sbin/ccs-* at boot)'
  'CCS_SHARE_ACCOUNT=${shareAccountName}'
  'CCS_SHARE_NAME=${shareName}'
  'CCS_SHARE_HOST=${shareAccountName}.file.${storageSuffix}'
  'CCS_MOUNT=${shareMountPath}'
  'CCS_KEYVAULT_URI=${vault.properties.vaultUri}'
  'CCS_SHARE_KEY_SECRET=${shareKeySecretName}'
  'CCS_BINDINGS_URL=https://${pipelineAccountName}.blob.${storageSuffix}/${bindingsContainerName}/${bindingsBlobName}'
  'CCS_HEALTH_URL=https://${pipelineAccountName}.blob.${storageSuffix}/${vmHealthContainerName}/${vmHealthBlobName}'
  'SEISCOMP_VERSION=${seiscompVersion}'
  'SEISCOMP_PLATFORM=${seiscompPlatform}'
  'SEISCOMP_SHA256=${seiscompSha256}'
  'WG_ADDRESS=${wireguardAddress}'
  'WG_SUBNET=${wireguardSubnet}'
  'WG_PORT=${wireguardPort}'
  'WG_PEERS_B64=${base64(join(peerLines, '\n'))}'
  'SEEDLINK_PORT=18000'
]
var vmEnvironment = join(vmEnvironmentLines, '\n')

resource nic 'Microsoft.Network/networkInterfaces@2024-01-01' = {
  name: '${name}-nic'
  location: location
  tags: tags
  properties: {
    enableIPForwarding: false
    ipConfigurations: [
      {
        name: 'ipconfig1'
        properties: {
          subnet: { id: subnetId }
          privateIPAllocationMethod: 'Dynamic'
          publicIPAddress: { id: publicIpId } // the WireGuard endpoint; the NSG admits SSH and WireGuard only
        }
      }
    ]
  }
}

resource vm 'Microsoft.Compute/virtualMachines@2024-07-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    hardwareProfile: { vmSize: vmSize }
    storageProfile: {
      imageReference: imageReference
      osDisk: {
        createOption: 'FromImage'
        diskSizeGB: 64
        managedDisk: { storageAccountType: 'StandardSSD_LRS' }
        deleteOption: 'Delete'
      }
    }
    osProfile: {
      computerName: take(replace(name, '-', ''), 15)
      adminUsername: adminUsername
      customData: loadFileAsBase64('../cloud-init/seiscomp.yaml')
      allowExtensionOperations: false
      linuxConfiguration: {
        disablePasswordAuthentication: true
        provisionVMAgent: true
        ssh: {
          publicKeys: [
            {
              path: '/home/${adminUsername}/.ssh/authorized_keys'
              keyData: adminSshPublicKey
            }
          ]
        }
        patchSettings: {
          patchMode: 'ImageDefault'
          assessmentMode: 'ImageDefault'
        }
      }
    }
    userData: base64(vmEnvironment)
    securityProfile: {
      // Needs the subscription feature Microsoft.Compute/EncryptionAtHost (deploy.sh checks).
      encryptionAtHost: true
      securityType: 'TrustedLaunch'
      uefiSettings: {
        secureBootEnabled: true
        vTpmEnabled: true
      }
    }
    networkProfile: {
      networkInterfaces: [
        { id: nic.id, properties: { deleteOption: 'Delete' } }
      ]
    }
    diagnosticsProfile: {
      bootDiagnostics: { enabled: true }
    }
  }
}

// Reads the share key (for the SMB mount) and nothing else in the vault.
resource shareKeyReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::shareKey.id, vm.id, roles.keyVaultSecretsUser)
  scope: vault::shareKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: vm.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Reads the station bindings archive deploy.sh publishes.
resource bindingsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::blobService::bindings.id, vm.id, roles.blobDataReader)
  scope: pipelineAccount::blobService::bindings
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataReader)
    principalId: vm.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Writes its provisioning health file (Put Blob) into the vmhealth container and nowhere else:
// not the bindings container, whose archive it only reads.
resource vmHealthWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::blobService::vmHealth.id, vm.id, roles.blobDataContributor)
  scope: pipelineAccount::blobService::vmHealth
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor)
    principalId: vm.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = vm.name
output principalId string = vm.identity.principalId
