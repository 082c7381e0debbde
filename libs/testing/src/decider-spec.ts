import { DomainError, type DomainErrorCode } from '@clientele/domain';

/**
 * Given/when/then for pure deciders:
 *   deciderSpec(decider).given(events).when(command).then(expectedEvents)
 *   … .thenThrows('self_referral', 'referredBy') / .thenNothing()
 * `decide` receives the state folded from `given` with the decider's own evolve.
 */
export interface SpecDecider<State, Command, Event> {
  initialState: () => State;
  evolve: (state: State, event: Event) => State;
  decide: (command: Command, state: State) => Event[];
}

export interface DeciderThen<Event> {
  /** the events decided, in order, deep-equal */
  then(expected: Event[]): Event[];
  /** a DomainError with this code (and field, when given) */
  thenThrows(code: DomainErrorCode, field?: string): DomainError;
  /** an idempotent no-op: no events, no error */
  thenNothing(): void;
}

export function deciderSpec<State, Command, Event>(decider: SpecDecider<State, Command, Event>) {
  return {
    given(events: Event[]) {
      return {
        when(command: Command): DeciderThen<Event> {
          const decide = (): Event[] => decider.decide(command, events.reduce(decider.evolve, decider.initialState()));
          return {
            then(expected) {
              const actual = decide();
              expect(actual).toStrictEqual(expected);
              return actual;
            },
            thenThrows(code, field) {
              let caught: unknown;
              try {
                decide();
              } catch (error) {
                caught = error;
              }
              expect(caught).toBeInstanceOf(DomainError);
              const error = caught as DomainError;
              expect({ code: error.code, ...(field !== undefined && { field: error.field }) }).toEqual({
                code,
                ...(field !== undefined && { field }),
              });
              return error;
            },
            thenNothing() {
              expect(decide()).toEqual([]);
            },
          };
        },
      };
    },
  };
}
