/**
 * The connection option that makes every transaction of a session read-only
 * (`default_transaction_read_only`): set by the server, so a write from a store opened to read only is
 * refused there, not merely not attempted here.
 */
export const READ_ONLY_SESSION = '-c default_transaction_read_only=on';
