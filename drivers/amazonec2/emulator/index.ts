/**
 * The Belt EC2 emulator: a local EC2 Query API whose instances are hosts of another driver.
 *
 *   const emu = await Ec2Emulator.start({backing: createSimulatedBacking(), port: 0})
 *   // --amazonec2-endpoint emu.endpoint, any static credentials; its Ubuntu images log in as ubuntu
 *   await emu.close()
 */
export {Ec2Emulator, parseRate, seededRandom, throwawayContext, DEFAULT_REGIONS, EC2_API_VERSION, EC2_XMLNS} from './server.js'
export type {Ec2EmulatorOptions, Ec2EmulatorStats} from './server.js'
export {createSimulatedBacking} from './simulated-backing.js'
export type {SimulatedBacking, SimulatedBackingOptions} from './simulated-backing.js'

/** The lines `belt emulator ec2` prints once it listens: how to point belt (and the AWS CLI) at it. */
export function usageBanner(endpoint: string, backing: string): string {
  return [
    `EC2 emulator listening on ${endpoint} (instances are ${backing} hosts that log in as ubuntu with sudo, like Ubuntu AMIs; Ctrl-C stops it and removes them)`,
    'Any credentials are accepted, but requests must be signed: set fake ones, never real keys, e.g.',
    '  export AWS_ACCESS_KEY_ID=emulator AWS_SECRET_ACCESS_KEY=emulator AWS_EC2_METADATA_DISABLED=true',
    'Then:',
    `  belt create --driver amazonec2 --amazonec2-endpoint ${endpoint} node[1:3]`,
    `  aws --endpoint-url ${endpoint} --region us-east-1 ec2 describe-instances`,
  ].join('\n')
}
