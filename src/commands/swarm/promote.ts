import {SwarmRoleCommand} from '../../swarm-role-command.js'

export default class SwarmPromote extends SwarmRoleCommand {
  static override summary = 'Promote swarm nodes to managers'
  static override description = 'One node at a time (each change is a Raft membership change). Belt warns when the managers would be an even number.'
  static override examples = ['<%= config.bin %> swarm promote node4']
  protected readonly role = 'manager'
}
