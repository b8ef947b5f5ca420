// The operators' workbook: per-field throughput, end-to-end latency percentiles, failures by
// reason and the poison queue depth, over the function app's Application Insights. Its
// content is infra/workbook.json, built from the KQL in docs/operations.md.

@description('Azure region of the workbook.')
param location string

@description('Tags applied to the workbook.')
param tags object

@description('Resource id of the Application Insights component the queries run against.')
param appInsightsId string

@description('Name shown in the portal.')
param displayName string = 'CCS-passive pipeline'

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; derived from the scope so redeploys update it in place.
  name: guid(resourceGroup().id, appInsightsId, 'ccs-passive-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: loadTextContent('../workbook.json')
  }
}

output id string = workbook.id
