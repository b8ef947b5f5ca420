// Example parameters for infra/main.bicep. Copy it (e.g. infra/prod.bicepparam), fill in your
// values, and pass it to infra/deploy.sh with --params. No secret belongs here: the template
// takes none (the share key goes from the storage account to Key Vault inside ARM).
using 'main.bicep'

param baseName = 'ccspassive'

// Keep in step with config/fields.toml; deploy.sh overrides it from that file on every run.
param fieldNames = [
  'snorre'
  'grane'
  'oseberg'
]

// Always-ready instances for each of decimate and convert: 0 scales to zero (cold start after a
// quiet spell), 1 keeps one warm instance per function, billed around the clock (docs/deployment.md).
param alwaysReadyInstances = 0

param alertEmail = 'seismic-ops@example.com'
param noMiniseedWindowMinutes = 60

// Raw data: cool after 30 days, archive after a year (0 = stay in cool). Never deleted.
param rawCoolAfterDays = 30
param rawArchiveAfterDays = 365
param retentionDays = 30
param logRetentionDays = 90

// SeisComP VM. The SSH public key is read from the environment of the machine that deploys.
param vmSize = 'Standard_B2s'
param vmAdminUsername = 'ccsadmin'
param vmAdminSshPublicKey = readEnvironmentVariable('CCS_SSH_PUBLIC_KEY', '')
param seiscompVersion = '7.3.1'
param seiscompSha256 = readEnvironmentVariable('CCS_SEISCOMP_SHA256', '')

// Who may reach the VM (documentation ranges here: replace them).
param adminCidrs = [
  '198.51.100.0/28'
]
param wireguardPeerSourceCidrs = [
  '203.0.113.0/24'
]
param wireguardSubnet = '10.99.0.0/24'
param wireguardAddress = '10.99.0.1/24'
param wireguardPort = 51820

// One entry per SeedLink consumer: its WireGuard public key and tunnel address.
// param wireguardPeers = [
//   { name: 'monitoring-centre', publicKey: '<peer public key>', allowedIps: '10.99.0.2/32' }
// ]
param wireguardPeers = []
