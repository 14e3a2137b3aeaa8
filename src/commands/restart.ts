import {PowerCommand} from '../power-command.js'

export default class Restart extends PowerCommand {
  static override summary = 'Restart hosts'
  static override description = 'Only drivers with this capability support it; others refuse before changing anything.'
  static override examples = ['<%= config.bin %> restart node1', '<%= config.bin %> restart node[1:3]']
  protected readonly action = 'restart'
}
