// Log Analytics workspace + workspace-based Application Insights. The function app sends its
// telemetry here (host logs, requests, and the pipeline's custom metrics such as
// MiniseedFilesWritten{field}); the alert rules in alerts.bicep query it.

param location string
param tags object
param workspaceName string
param appInsightsName string
param logRetentionDays int

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: logRetentionDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    RetentionInDays: logRetentionDays
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

output workspaceId string = workspace.id
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
// A connection string carries only the ingestion key, which identifies (does not authorise
// reading) the resource; it is an app setting by design (APPLICATIONINSIGHTS_CONNECTION_STRING).
output appInsightsConnectionString string = appInsights.properties.ConnectionString
