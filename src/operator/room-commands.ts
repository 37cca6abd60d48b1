// Runs a room admin's `!pingboard …` command and words the answer the room sees.
import { InputError } from '../errors.ts';
import type { TrackedRoom } from '../stats/rooms.ts';
import { ADMIN_USAGE, type AdminCommand } from './commands.ts';
import type { OperatorControls } from './controls.ts';

export interface RoomCommandContext {
  readonly controls: OperatorControls;
  readonly room: TrackedRoom;
  readonly sender: string;
  readonly senderPowerLevel: number;
  readonly requiredPowerLevel: number;
}

/** The notice to answer with. Mistakes are answered, never thrown: the room sees what went wrong. */
export async function runRoomCommand(command: AdminCommand, context: RoomCommandContext): Promise<string> {
  if (command.kind === 'help') return ADMIN_USAGE;
  if (command.kind === 'invalid') return command.message;
  if (context.senderPowerLevel < context.requiredPowerLevel) {
    return `Only members with power level ${context.requiredPowerLevel} or more can do that (you have ${context.senderPowerLevel}).`;
  }
  const { controls, room, sender } = context;
  try {
    switch (command.kind) {
      case 'exclude': {
        const exclusion = await controls.exclude(room, command.server, command.reason, sender);
        return `Excluded ${exclusion.server} from the rankings: ${exclusion.reason}. Frozen weeks change only when frozen again.`;
      }
      case 'include':
        return (await controls.include(room, command.server))
          ? `${command.server} is ranked again.`
          : `${command.server} was not excluded.`;
      case 'delete': {
        const deleted = await controls.deletePing(room, command.pingEventId);
        return deleted === 0
          ? `No samples of ${command.pingEventId}.`
          : `Deleted ${deleted} sample${deleted === 1 ? '' : 's'} of ${command.pingEventId}.`;
      }
      case 'refreeze': {
        const frozen = await controls.refreeze(room, command.week, sender, command.reason);
        return `Froze ${frozen.week} again: version ${frozen.version}, ${frozen.servers.length} ranked servers. The previous version stays in the week's history.`;
      }
    }
  } catch (err) {
    if (err instanceof InputError) return `Not done: ${err.message}`;
    throw err;
  }
}
