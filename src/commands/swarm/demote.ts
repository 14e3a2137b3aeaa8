import {SwarmRoleCommand} from '../../swarm-role-command.js'

export default class SwarmDemote extends SwarmRoleCommand {
  static override summary = 'Demote swarm nodes to workers'
  static override description = 'One node at a time (each change is a Raft membership change). Belt warns when the managers would be an even number.'
  static override examples = ['<%= config.bin %> swarm demote node4']
  protected readonly role = 'worker'
}
