import {PowerCommand} from '../power-command.js'

export default class Kill extends PowerCommand {
  static override summary = 'Power hosts off at once (their disks are kept)'
  static override description = 'Only drivers with this capability support it; others refuse before changing anything.'
  static override examples = ['<%= config.bin %> kill node1', '<%= config.bin %> kill node[1:3]']
  protected readonly action = 'kill'
}
