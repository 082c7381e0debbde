/** Stops what global setup started. */
export default async function globalTeardown(): Promise<void> {
  // nothing is started yet besides probes
}
