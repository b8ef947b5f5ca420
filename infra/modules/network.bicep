// Network of the SeisComP VM: one VNet/subnet, an NSG that admits only SSH from the admin
// CIDRs and WireGuard's UDP port from the peers' CIDRs, and a static public IP (the WireGuard
// endpoint). SeedLink (TCP 18000) is never reachable from the internet: consumers reach it
// through the WireGuard tunnel, and the VM's own firewall accepts 18000 only on wg0.

param location string
param tags object
param vnetName string
param nsgName string
param publicIpName string
param vnetAddressPrefix string
param vmSubnetPrefix string
param adminCidrs array
param wireguardPeerSourceCidrs array
param wireguardSubnet string
param wireguardPort int

resource nsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: nsgName
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-ssh-from-admins'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefixes: adminCidrs
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '22'
        }
      }
      {
        name: 'allow-wireguard-from-peers'
        properties: {
          priority: 110
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Udp'
          sourceAddressPrefixes: wireguardPeerSourceCidrs
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: string(wireguardPort)
        }
      }
      {
        // Tunnel traffic is decapsulated on the VM and never crosses the NSG; this rule only
        // documents the intent. The host firewall (nftables, cloud-init) enforces it.
        name: 'allow-seedlink-from-wireguard-subnet'
        properties: {
          priority: 120
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: wireguardSubnet
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '18000'
        }
      }
      {
        name: 'deny-seedlink-from-anywhere-else'
        properties: {
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '18000'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [ vnetAddressPrefix ]
    }
    subnets: [
      {
        name: 'snet-seiscomp'
        properties: {
          addressPrefix: vmSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

resource publicIp 'Microsoft.Network/publicIPAddresses@2024-01-01' = {
  name: publicIpName
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Regional' }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

output vmSubnetId string = vnet.properties.subnets[0].id
output publicIpId string = publicIp.id
output publicIpAddress string = publicIp.properties.ipAddress
output nsgId string = nsg.id
