import { describe, expect, it } from 'vitest';
import { isTemplateVariable, parseTemplate, TEMPLATE_VARIABLES } from '../../src/config/template.js';

describe('parseTemplate', () => {
  it.each([
    ['plain text', ['plain text']],
    ['', []],
    ['$remote_addr', [{ variable: 'remote_addr' }]],
    ['https://$host$request_uri', ['https://', { variable: 'host' }, { variable: 'request_uri' }]],
    ['$host:8080', [{ variable: 'host' }, ':8080']],
    ['id=$request_id;', ['id=', { variable: 'request_id' }, ';']],
    ['$http_x_user_id', [{ variable: 'http_x_user_id' }]],
    ['$proxy_add_x_forwarded_for', [{ variable: 'proxy_add_x_forwarded_for' }]],
    ['$$host costs $5 or $', ['$host costs $5 or $']],
    ['a$$$scheme', ['a$', { variable: 'scheme' }]],
  ])('%j', (text, parts) => {
    expect(parseTemplate(text)).toEqual({ parts });
  });

  it.each([
    ['$remote_adr', 'remote_adr', 'remote_addr'],
    ['x $hostname', 'hostname', 'host'],
    ['$Host', 'Host', 'host'],
    ['$HTTP_X_ID', 'HTTP_X_ID', 'http_x_id'],
    ['$uri', 'uri', 'request_uri'],
  ])('%j is an unknown variable with a suggestion', (text, variable, suggestion) => {
    expect(parseTemplate(text)).toEqual({
      error: `unknown variable $${variable}; did you mean $${suggestion}?`,
      variable,
      suggestion,
    });
  });

  it('reports an unknown variable without a close match plainly', () => {
    expect(parseTemplate('$zzzzzz')).toEqual({ error: 'unknown variable $zzzzzz', variable: 'zzzzzz' });
  });

  it('knows the contract variables and $http_<name>, lower-case only', () => {
    for (const v of TEMPLATE_VARIABLES) expect(isTemplateVariable(v)).toBe(true);
    expect(isTemplateVariable('http_user_agent')).toBe(true);
    expect(isTemplateVariable('http_')).toBe(false);
    expect(isTemplateVariable('http_X')).toBe(false);
    expect(isTemplateVariable('document_root')).toBe(false);
  });
});
