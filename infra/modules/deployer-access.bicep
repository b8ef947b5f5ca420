// The principal that runs deploy.sh (a user, or the CI service principal) uploads the SeisComP
// bindings archive to the bindings container: Storage Blob Data Contributor on that container
// only. (The pipeline account has no shared keys, so uploads use Entra ID: --auth-mode login.)

param pipelineAccountName string
param bindingsContainerName string
param principalId string
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string

var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource pipelineAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: pipelineAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource bindings 'containers' existing = {
      name: bindingsContainerName
    }
  }
}

resource bindingsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::blobService::bindings.id, principalId, blobDataContributor)
  scope: pipelineAccount::blobService::bindings
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    principalId: principalId
    principalType: principalType
  }
}
