// Text checks shared by validation and emoji parsing.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Like String.prototype.isWellFormed (not declared by this TS lib setting): no lone surrogates, so encodable as UTF-8. */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}
