// Action group (e-mail) and log alert rules over the workspace-based Application Insights:
//   * function failures: failed invocations (requests with success == false), per function;
//   * poison messages: PoisonQueueDepth{queue} (reported by the reconcile timer) above 0, or the
//     host's "Moving message to queue '<convert>-poison'" log line;
//   * no MiniSEED for a field: the app's custom metric MiniseedFilesWritten{field} summed
//     over the window, per configured field (a field with no data point at all counts as 0).

param location string
param tags object
param actionGroupName string
param alertEmail string
param appInsightsId string
param poisonQueueName string
param fieldNames array
param noMiniseedWindowMinutes int

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take(replace(actionGroupName, '-', ''), 12)
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var failuresQuery = '''
requests
| where success == false
| summarize failures = count() by operation_Name
'''

// Two sources: the depth the reconcile timer reports every 10 minutes (PoisonQueueDepth{queue}),
// and the host's own log line when it moves a message (which log sampling could drop).
var poisonQuery = '''
let depth = customMetrics
    | where name == "PoisonQueueDepth" and tostring(customDimensions.queue) == "POISON_QUEUE"
    | summarize n = max(valueMax);
let moved = traces
    | where message has "MaxDequeueCount" and message has "POISON_QUEUE"
    | summarize n = todouble(count());
union depth, moved
| summarize poison = max(n)
'''

var noMiniseedQuery = '''
let expected = dynamic(FIELD_NAMES);
customMetrics
| where name == "MiniseedFilesWritten"
| extend field = tostring(customDimensions.field)
| where field in (expected)
| summarize written = sum(valueSum) by field
| union (print field = expected | mv-expand field to typeof(string) | extend written = 0.0)
| summarize written = sum(written) by field
'''

resource functionFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${actionGroupName}-function-failures'
  location: location
  tags: tags
  properties: {
    displayName: 'CCS-passive: function failures'
    description: 'A function invocation failed (decimate, convert, reconcile, retention, health, status).'
    severity: 2
    enabled: true
    scopes: [ appInsightsId ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: failuresQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          dimensions: [
            { name: 'operation_Name', operator: 'Include', values: [ '*' ] }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [ actionGroup.id ] }
  }
}

resource poisonMessages 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${actionGroupName}-poison-messages'
  location: location
  tags: tags
  properties: {
    displayName: 'CCS-passive: messages moved to ${poisonQueueName}'
    description: 'Messages are in the convert poison queue (maxDequeueCount reached); see failed/ on the share and replay.'
    severity: 1
    enabled: true
    scopes: [ appInsightsId ]
    evaluationFrequency: 'PT10M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: replace(poisonQuery, 'POISON_QUEUE', poisonQueueName)
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'poison'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [ actionGroup.id ] }
  }
}

resource noMiniseed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${actionGroupName}-no-miniseed'
  location: location
  tags: tags
  properties: {
    displayName: 'CCS-passive: no MiniSEED for a field in ${noMiniseedWindowMinutes} min'
    description: 'MiniseedFilesWritten summed to 0 for a field over the window: uploads stopped or the pipeline is stuck.'
    severity: 2
    enabled: true
    scopes: [ appInsightsId ]
    evaluationFrequency: noMiniseedWindowMinutes >= 60 ? 'PT15M' : 'PT5M'
    windowSize: 'PT${noMiniseedWindowMinutes}M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: replace(noMiniseedQuery, 'FIELD_NAMES', string(fieldNames))
          timeAggregation: 'Total'
          metricMeasureColumn: 'written'
          dimensions: [
            { name: 'field', operator: 'Include', values: [ '*' ] }
          ]
          operator: 'LessThanOrEqual'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [ actionGroup.id ] }
  }
}

output actionGroupId string = actionGroup.id
