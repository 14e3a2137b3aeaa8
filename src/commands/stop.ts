import {PowerCommand} from '../power-command.js'

export default class Stop extends PowerCommand {
  static override summary = 'Stop hosts gracefully (their disks are kept)'
  static override description = 'Only drivers with this capability support it; others refuse before changing anything.'
  static override examples = ['<%= config.bin %> stop node1', '<%= config.bin %> stop node[1:3]']
  protected readonly action = 'stop'
}
