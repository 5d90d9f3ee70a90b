/**
 * The one way pyvent turns a registration (`connect`, `respond`) into a class
 * method decorator (TypeScript 5 standard decorators).
 *
 * @module
 */
import type { PyventEvent } from './dispatcher'

/**
 * Decorator returned by `connect(signal, options)` and `respond(signal)` for
 * class methods. The method must accept payloads of type `T`; for a bare signal
 * name `T` is `never`, so the method may declare any payload type.
 */
export type MethodDecorator<T> = <This, Fn extends (this: This, payload: T, event: PyventEvent<T>) => unknown>(
  method: Fn,
  context: ClassMethodDecoratorContext<This, Fn>
) => void

/**
 * A decorator that, for each instance created, hands `register` the instance's
 * method bound to it. `register` runs at construction time, so whatever it
 * looks up (the default node, say) is looked up then, not at class definition.
 */
export function methodDecorator(register: (method: (...args: never[]) => unknown) => void): MethodDecorator<never> {
  return (method, context) => {
    if (context.kind !== 'method') throw new TypeError('@connect() and @respond() decorate class methods only.')
    context.addInitializer(function (this: unknown) {
      register((method as (...args: never[]) => unknown).bind(this))
    })
  }
}
