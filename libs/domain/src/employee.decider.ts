import type { EmployeeCommand } from './commands';
import { DomainError, DomainErrorCodes } from './errors';
import type { EmployeeEvent, IsoDateTime } from './events';
import { businessTime, unknownCommand, withoutUndefined } from './guards';

/** Employees over the stream `employee-{id}`: hired, left, and hired again. */

export type EmployeeState =
  | { phase: 'unknown' }
  | { phase: 'hired'; employeeId: string; name: string; role?: string; hiredAt: IsoDateTime }
  | { phase: 'left'; employeeId: string; name: string; leftAt: IsoDateTime };

export const initialEmployeeState = (): EmployeeState => ({ phase: 'unknown' });

export function evolveEmployee(state: EmployeeState, event: EmployeeEvent): EmployeeState {
  switch (event.type) {
    case 'EmployeeHired':
      return withoutUndefined({
        phase: 'hired' as const,
        employeeId: event.data.employeeId,
        name: event.data.name,
        role: event.data.role,
        hiredAt: event.data.occurredAt,
      });
    case 'EmployeeLeft':
      if (state.phase !== 'hired') return state;
      return { phase: 'left', employeeId: state.employeeId, name: state.name, leftAt: event.data.occurredAt };
    default:
      return state;
  }
}

export function foldEmployee(events: Iterable<EmployeeEvent>, state: EmployeeState = initialEmployeeState()): EmployeeState {
  let current = state;
  for (const event of events) current = evolveEmployee(current, event);
  return current;
}

export function decideEmployee(command: EmployeeCommand, state: EmployeeState): EmployeeEvent[] {
  businessTime(command.data.occurredAt);
  const { data } = command;
  switch (command.type) {
    case 'HireEmployee':
      if (state.phase === 'hired') {
        if (state.name === command.data.name) return [];
        throw new DomainError(
          DomainErrorCodes.EmployeeAlreadyHired,
          `employee ${data.employeeId} is already hired as ${state.name}; record that they left before hiring again`,
          'employeeId',
        );
      }
      if (state.phase === 'left' && businessTime(data.occurredAt) < businessTime(state.leftAt)) {
        throw new DomainError(
          DomainErrorCodes.DateOutOfOrder,
          `occurredAt ${data.occurredAt} is before employee ${data.employeeId} left (${state.leftAt}); a rehire cannot be dated before the departure it follows`,
          'occurredAt',
        );
      }
      return [{ type: 'EmployeeHired', data: withoutUndefined(command.data) }];
    case 'RecordEmployeeLeft':
      if (state.phase === 'left') return [];
      if (state.phase === 'unknown') {
        throw new DomainError(DomainErrorCodes.EmployeeNotHired, `employee ${data.employeeId} was never hired`, 'employeeId');
      }
      if (businessTime(data.occurredAt) < businessTime(state.hiredAt)) {
        throw new DomainError(
          DomainErrorCodes.DateOutOfOrder,
          `occurredAt ${data.occurredAt} is before employee ${data.employeeId} was hired (${state.hiredAt}); a departure cannot be dated before the hiring it ends`,
          'occurredAt',
        );
      }
      return [{ type: 'EmployeeLeft', data: withoutUndefined(command.data) }];
    default:
      return unknownCommand(command);
  }
}

export const employeeDecider = {
  initialState: initialEmployeeState,
  evolve: evolveEmployee,
  decide: decideEmployee,
} as const;
