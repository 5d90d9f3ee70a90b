/**
 * The one way pyvent turns a registration (`connect`, `respond`) into a class
 * method decorator, and the one `@emits` wrapper (TypeScript 5 standard
 * decorators), shared by `Node` and the module-level functions.
 *
 * @module
 */
import { isThenable, PyventEvent } from './dispatcher'
import type { EmitsDecorator } from './node-types'
import { InvalidArgumentError } from './errors'

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
    if (context.kind !== 'method') throw new InvalidArgumentError('@connect() and @respond() decorate class methods only.')
    context.addInitializer(function (this: unknown) {
      register((method as (...args: never[]) => unknown).bind(this))
    })
  }
}

/**
 * The decorator behind `@emits`: after each call of the method, `emit` gets
 * the instance and the method's return value (its resolved value, for a
 * promise). The method's result, throw or rejection reaches the caller
 * untouched; a call that throws emits nothing.
 */
export function emitsDecorator<T>(emit: (self: unknown, value: unknown) => void): EmitsDecorator<T> {
  return (method, context) => {
    if (context.kind !== 'method') throw new InvalidArgumentError('@emits() decorates class methods only.')
    return function (this: ThisParameterType<typeof method>, ...args: Parameters<typeof method>) {
      const result = method.apply(this, args)
      // The rejection handler only keeps this side chain quiet; the caller's promise is returned untouched.
      if (isThenable(result)) result.then((value) => emit(this, value), () => undefined)
      else emit(this, result)
      return result
    }
  }
}
