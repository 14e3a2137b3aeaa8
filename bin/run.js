#!/usr/bin/env node
// The `belt` entry point. Errors are rendered by BaseCommand.catch; this is the last resort for
// failures before a command runs (e.g. a broken install), which are bugs and keep their stack.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
