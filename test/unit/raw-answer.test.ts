import { describe, expect, it } from 'vitest';
import { rawAnswerStatus } from '../../src/handlers/raw-answer.js';

describe('rawAnswerStatus', () => {
  it('reads the status of a whole status line', () => {
    expect(rawAnswerStatus('HTTP/1.1 101 Switching Protocols\r\n')).toBe(101);
    expect(rawAnswerStatus('HTTP/1.0 426')).toBe(426);
    expect(rawAnswerStatus('HTTP/1.1 400 Bad Request')).toBe(400);
  });

  it('waits while the bytes so far may still be a status line', () => {
    for (const start of ['H', 'HTTP/1.', 'HTTP/1.1', 'HTTP/1.1 ', 'HTTP/1.1 10']) {
      expect(rawAnswerStatus(start)).toBe(0);
    }
  });

  it('gives up on bytes that are no status line, or not one of an answer', () => {
    for (const start of [
      '\x81\x02hi',
      'HTTP/2 ',
      'HTTP/1.2',
      'HTTP/1.1 1x',
      'http/1.1 101',
      'HTTP/1.1 100 Continue',
    ]) {
      expect(rawAnswerStatus(start)).toBe(-1);
    }
    expect(rawAnswerStatus('HTTP/1.1 600 Nope')).toBe(-1);
  });
});
