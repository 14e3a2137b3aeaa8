import {PowerCommand} from '../power-command.js'

export default class Start extends PowerCommand {
  static override summary = 'Start stopped hosts'
  static override description = 'Only drivers with this capability support it; others refuse before changing anything.'
  static override examples = ['<%= config.bin %> start node1', '<%= config.bin %> start node[1:3]']
  protected readonly action = 'start'
}
