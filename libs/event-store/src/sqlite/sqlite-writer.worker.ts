import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { openStoreFile, SqliteWriter } from './sqlite-writer';
import { toWireError, toWireOutcomes, type WriterReply, type WriterRequest, type WriterThreadData } from './sqlite-writer.protocol';

/**
 * The writer thread: owns the write connection of one store file and answers each request, in
 * order, after its transaction committed (with `full` durability: after the fsync).
 */
const port = parentPort;
if (!port) throw new Error('sqlite-writer.worker runs only as a worker thread');
const { file, durability } = workerData as WriterThreadData;
const writer = new SqliteWriter(openStoreFile(file, durability));

port.on('message', (request: WriterRequest) => {
  let reply: WriterReply;
  switch (request.t) {
    case 'group': {
      const outcomes = toWireOutcomes(writer.writeGroup(request.group));
      reply = { t: 'group', outcomes, ms: performance.timeOrigin + performance.now() - request.sentAt };
      break;
    }
    case 'import':
      try {
        writer.importStored(request.events);
        reply = { t: 'import' };
      } catch (error) {
        reply = { t: 'import', error: toWireError(error) };
      }
      break;
    case 'keys':
      try {
        reply = { t: 'keys', stored: writer.storeCustomerKeys(request.rows) };
      } catch (error) {
        reply = { t: 'keys', error: toWireError(error) };
      }
      break;
    case 'close':
      writer.close();
      port.postMessage({ t: 'closed' } satisfies WriterReply);
      port.close();
      return;
  }
  port.postMessage(reply);
});
