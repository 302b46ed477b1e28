/**
 * An EventEmitter whose events are checked by the compiler: `E` maps each event name to the
 * arguments its listeners get, so `ch.on('message', (m) => ...)` gives `m` its type and
 * `ch.on('mesage', ...)` does not compile. At run time it is Node's EventEmitter, nothing more.
 */
import { EventEmitter } from 'node:events';

/** Event name -> listener arguments. */
export type EventMap = { [event: string]: unknown[] };

/**
 * A listener of an event with arguments `A`. An event without arguments takes any function, so
 * `new Promise((resolve) => ch.once('open', resolve))` type-checks as users write it.
 */
export type Listener<A extends unknown[]> = A extends [] ? (...args: unknown[]) => void : (...args: A) => void;

export declare interface TypedEmitter<E extends EventMap> {
  on<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this;
  once<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this;
  off<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this;
  addListener<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this;
  removeListener<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this;
  prependListener<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this;
  emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean;
  listenerCount<K extends keyof E & string>(event: K): number;
}

// The declaration above narrows EventEmitter's signatures for this class and its subclasses; `E` is
// used there (declaration merging needs the same type parameters on both).
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the merge is the typing, by design
// biome-ignore lint/correctness/noUnusedVariables: E is used by the merged interface above
export class TypedEmitter<E extends EventMap> extends EventEmitter {}
