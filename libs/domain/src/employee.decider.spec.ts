import { deciderSpec } from '@clientele/testing';
import type { EmployeeCommand } from './commands';
import { employeeDecider, foldEmployee, type EmployeeState } from './employee.decider';
import type { EmployeeEvent } from './events';

const spec = deciderSpec<EmployeeState, EmployeeCommand, EmployeeEvent>(employeeDecider);
const T0 = '2026-01-05T08:00:00Z';
const T1 = '2026-06-30T17:00:00Z';
const T2 = '2026-09-01T08:00:00Z';

const hire = (at: string, name = 'Grace'): EmployeeCommand => ({
  type: 'HireEmployee',
  data: { employeeId: 'e-1', name, role: 'clerk', occurredAt: at },
});
const leave = (at: string): EmployeeCommand => ({ type: 'RecordEmployeeLeft', data: { employeeId: 'e-1', reason: 'resigned', occurredAt: at } });
const hired = (at: string, name = 'Grace'): EmployeeEvent => ({
  type: 'EmployeeHired',
  data: { employeeId: 'e-1', name, role: 'clerk', occurredAt: at },
});
const left = (at: string): EmployeeEvent => ({ type: 'EmployeeLeft', data: { employeeId: 'e-1', reason: 'resigned', occurredAt: at } });

describe('employee decider', () => {
  it('hires once; the same hire repeated is a no-op', () => {
    spec.given([]).when(hire(T0)).then([hired(T0)]);
    spec.given([hired(T0)]).when(hire(T1)).thenNothing();
  });
  it('refuses hiring a different person under an id still employed', () => {
    spec.given([hired(T0)]).when(hire(T1, 'Alan')).thenThrows('employee_already_hired', 'employeeId');
  });
  it('records leaving once, only for someone hired', () => {
    spec.given([hired(T0)]).when(leave(T1)).then([left(T1)]);
    spec.given([hired(T0), left(T1)]).when(leave(T2)).thenNothing();
    spec.given([]).when(leave(T1)).thenThrows('employee_not_hired', 'employeeId');
  });
  it('rehires someone who left', () => {
    spec.given([hired(T0), left(T1)]).when(hire(T2)).then([hired(T2)]);
    expect(foldEmployee([hired(T0), left(T1), hired(T2)])).toEqual({
      phase: 'hired',
      employeeId: 'e-1',
      name: 'Grace',
      role: 'clerk',
      hiredAt: T2,
    });
  });
  it('refuses a departure dated before the hiring, and a rehire dated before the departure, naming occurredAt', () => {
    spec.given([hired(T1)]).when(leave(T0)).thenThrows('date_out_of_order', 'occurredAt');
    spec.given([hired(T0), left(T1)]).when(hire(T0)).thenThrows('date_out_of_order', 'occurredAt');
    spec.given([hired(T0)]).when(leave(T0)).then([left(T0)]);
    spec.given([hired(T0), left(T1)]).when(hire(T1)).then([hired(T1)]);
  });
  it('refuses an invalid business time', () => {
    spec.given([]).when(hire('2026-13-01')).thenThrows('invalid_date', 'occurredAt');
  });
});
