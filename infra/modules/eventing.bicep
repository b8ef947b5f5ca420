// Event Grid: a system topic on the pipeline storage account, and the subscription that sends
// Microsoft.Storage.BlobCreated events of the raw container to the `decimate` function.
//
// Order: an AzureFunction endpoint is validated when the subscription is created, and that fails
// while the function app has no indexed `decimate` function. deploy.sh therefore deploys with
// deployEventSubscription=false, publishes the code, waits for `decimate` to be listed, then
// deploys again with deployEventSubscription=true.

param location string
param tags object
param systemTopicName string
param pipelineAccountName string
param rawContainerName string
param deadLetterContainerName string
param functionAppName string
param functionName string
param deployEventSubscription bool

@description('Delivery attempts before an event is dead-lettered.')
param maxDeliveryAttempts int = 30

@description('Minutes an event is retried before it is dead-lettered.')
param eventTimeToLiveInMinutes int = 1440

var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource pipelineAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: pipelineAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource deadLetter 'containers' existing = {
      name: deadLetterContainerName
    }
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: location
  tags: tags
  identity: {
    // Dead-letters with its own identity: the pipeline account has no shared keys.
    type: 'SystemAssigned'
  }
  properties: {
    source: pipelineAccount.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineAccount::blobService::deadLetter.id, systemTopic.id, blobDataContributor)
  scope: pipelineAccount::blobService::deadLetter
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource blobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (deployEventSubscription) {
  parent: systemTopic
  name: 'raw-blob-created-to-${functionName}'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${site.id}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${rawContainerName}/'
      enableAdvancedFilteringOnArrays: true
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: pipelineAccount.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
  dependsOn: [
    deadLetterWriter
  ]
}

output systemTopicName string = systemTopic.name
output subscriptionName string = deployEventSubscription ? blobCreated.name : ''
