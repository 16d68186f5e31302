import type { IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { InputBudget, InputHolder } from '../input-budget.js';
import { HttpError } from './http-errors.js';

/**
 * A request body on its way in, charged to the node's input budget (SPEC
 * 9.5) until it is whole: fastify keeps a body in memory up to its
 * bodyLimit, so concurrent requests each sending most of a body and never
 * the end held bodyLimit × requests. Past the budget the body's next chunk
 * is held back (the request stream, hence its socket, stops being read)
 * until the budget frees; the budget closes a body that sends nothing while
 * others wait, or that waits too long, with 503 MB_ERR_INPUT_BUDGET.
 */
class BodyHolder extends Transform implements InputHolder {
  inputCharge = 0;
  inputWaitSince = 0;
  private received = 0;
  /** The callback of the chunk held back while the budget pauses this body. */
  private heldBack: TransformCallback | undefined;

  constructor(
    private readonly budget: InputBudget,
    private readonly reply: FastifyReply,
  ) {
    super();
    // Whole, failed or abandoned: nothing of it is charged any more.
    this.once('close', () => budget.charge(this, 0));
    this.once('end', () => budget.charge(this, 0));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    this.push(chunk);
    this.budget.charge(this, this.received);
    if (this.inputWaitSince !== 0) this.heldBack = done;
    else done();
  }

  inputProgress(): number {
    return this.received;
  }

  inputPause(): void {
    // _transform holds its callback back while inputWaitSince is set.
  }

  inputResume(): void {
    const done = this.heldBack;
    this.heldBack = undefined;
    done?.();
  }

  inputEvict(why: string): void {
    this.heldBack = undefined;
    // The rest of the body will not be read: the connection closes after the 503.
    this.reply.header('connection', 'close');
    this.destroy(new HttpError('MB_ERR_INPUT_BUDGET', why));
  }
}

/** A fastify preParsing hook charging request bodies to `budget`. */
export function bodyBudget(budget: InputBudget) {
  return async (_req: FastifyRequest, reply: FastifyReply, payload: NodeJS.ReadableStream): Promise<NodeJS.ReadableStream> => {
    const holder = new BodyHolder(budget, reply);
    // However the request ends, nothing of its body is held once its response is done: a reply sent before the body was
    // read whole (413 past bodyLimit, by Content-Length or counted) leaves the holder neither ended nor closed, and node
    // then drops the rest of the body unread (its pipe into the holder removed): the charge stayed for ever.
    reply.raw.once('close', () => holder.destroy());
    // The client went away before its body was whole: nothing more comes, nothing stays charged.
    payload.once('error', (e: Error) => holder.destroy(e));
    payload.once('close', () => {
      if ((payload as Partial<IncomingMessage>).complete === false) holder.destroy();
    });
    return payload.pipe(holder);
  };
}
