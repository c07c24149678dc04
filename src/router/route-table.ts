/**
 * Route selection inside one server, in nginx `location` order:
 *
 *   1. routes with an exact `path` equal to the request path;
 *   2. `path_regex` routes, in the order written;
 *   3. `path_prefix` routes, longest prefix first (same length: the order written);
 *   4. routes without a path condition, in the order written.
 *
 * Within that order, the first route whose `methods` and `headers` also match wins. Compiled once
 * per config into a Map (exact), an array (regex) and a length-sorted array (prefix).
 */
import type { HeaderMatch, ResolvedRoute } from '../config/types.js';

/** Reads one request header by lower-case name (the first value when repeated). */
export interface HeaderLookup {
  header(lowerName: string): string | undefined;
}

interface CompiledRoute<T> {
  readonly route: ResolvedRoute;
  readonly value: T;
  readonly methods: ReadonlySet<string> | null;
  readonly headers: readonly { readonly name: string; readonly value: string; readonly re: RegExp | null }[];
}

/** The compiled route lookup of one server; `T` is whatever the caller attaches to each route. */
export class RouteTable<T> {
  readonly #exact = new Map<string, CompiledRoute<T>[]>();
  readonly #regex: { readonly re: RegExp; readonly route: CompiledRoute<T> }[] = [];
  readonly #prefix: { readonly prefix: string; readonly route: CompiledRoute<T> }[] = [];
  readonly #any: CompiledRoute<T>[] = [];

  constructor(routes: readonly ResolvedRoute[], attach: (route: ResolvedRoute, index: number) => T) {
    routes.forEach((route, index) => {
      const compiled: CompiledRoute<T> = {
        route,
        value: attach(route, index),
        methods: route.methods ? new Set(route.methods) : null,
        headers: route.headers.map(compileHeaderMatch),
      };
      const path = route.path;
      if (path === null) {
        this.#any.push(compiled);
        return;
      }
      switch (path.kind) {
        case 'exact': {
          const list = this.#exact.get(path.path);
          if (list) list.push(compiled);
          else this.#exact.set(path.path, [compiled]);
          return;
        }
        case 'regex':
          this.#regex.push({ re: new RegExp(path.source), route: compiled });
          return;
        case 'prefix':
          this.#prefix.push({ prefix: path.prefix, route: compiled });
          return;
      }
    });
    // Array.prototype.sort is stable: equal lengths keep the order written.
    this.#prefix.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The value attached to the matching route, or `undefined` when none matches (404). */
  match(path: string, method: string, header: HeaderLookup): T | undefined {
    const exact = this.#exact.get(path);
    if (exact) {
      for (const r of exact) if (accepts(r, method, header)) return r.value;
    }
    for (const { re, route } of this.#regex) {
      if (re.test(path) && accepts(route, method, header)) return route.value;
    }
    for (const { prefix, route } of this.#prefix) {
      if (path.startsWith(prefix) && accepts(route, method, header)) return route.value;
    }
    for (const r of this.#any) if (accepts(r, method, header)) return r.value;
    return undefined;
  }
}

function compileHeaderMatch(h: HeaderMatch) {
  return { name: h.name, value: h.value, re: h.regex ? new RegExp(h.value) : null };
}

function accepts<T>(r: CompiledRoute<T>, method: string, header: HeaderLookup): boolean {
  if (r.methods !== null && !r.methods.has(method)) return false;
  for (const h of r.headers) {
    const v = header.header(h.name);
    if (v === undefined) return false;
    if (h.re ? !h.re.test(v) : v !== h.value) return false;
  }
  return true;
}
