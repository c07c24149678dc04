import { ERROR_CATALOGUE, type ErrorCode } from './catalogue.js';

/** The one error class library code throws: a permanent code, a message, and the catalogue's hint. */
export class SluiceError extends Error {
  override readonly name = 'SluiceError';
  readonly code: ErrorCode;
  readonly hint: string;
  /** Further problems reported together with this one (config validation returns them all). */
  readonly details: readonly string[];

  /** `options.hint` replaces the catalogue's where the code covers several situations. */
  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; details?: readonly string[]; hint?: string },
  ) {
    super(
      message ?? ERROR_CATALOGUE[code].title,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.hint = options?.hint ?? ERROR_CATALOGUE[code].hint;
    this.details = options?.details ?? [];
  }

  /** The HTTP status this error maps to (0 for errors that never reach a client). */
  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }
}
