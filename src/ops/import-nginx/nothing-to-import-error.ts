/** The nginx config has nothing sluice can serve: no `server` block is left to convert. */
export class NothingToImportError extends Error {
  override readonly name = 'NothingToImportError';
  readonly file: string;

  constructor(file: string, message: string) {
    super(message);
    this.file = file;
  }

  /** `FILE: error: message`. */
  format(): string {
    return `${this.file}: error: ${this.message}`;
  }
}
