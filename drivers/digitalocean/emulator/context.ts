// The emulators' shared backing contexts (drivers/emulator-kit.ts), under the names this emulator uses.
export {backingContext, memoryContext} from '../../emulator-kit.js'
