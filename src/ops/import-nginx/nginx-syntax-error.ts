/** A problem that stops the conversion: nginx itself would refuse the file (`nginx -t`). */

/** An nginx syntax error, with the file, line and column it was found at. */
export class NginxSyntaxError extends Error {
  override readonly name = 'NginxSyntaxError';
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based; 0 when only the line is known. */
  readonly col: number;

  constructor(file: string, line: number, col: number, message: string) {
    super(message);
    this.file = file;
    this.line = line;
    this.col = col;
  }

  /** `FILE:LINE:COL: error: message` (`FILE:LINE: error: message` without a column). */
  format(): string {
    const where = this.col > 0 ? `${this.file}:${this.line}:${this.col}` : `${this.file}:${this.line}`;
    return `${where}: error: ${this.message}`;
  }
}
