<!doctype html>
<html lang="{{ app()->getLocale() }}">
<head>
  <meta charset="utf-8">
  <meta name="csrf-token" content="{{ csrf_token() }}">
  <title>@yield('title') - {{ $name }}</title>
</head>
<body>
  @include('partials.nav')
  <main>
    @yield('content')
  </main>
  <footer>Laravel {{ $laravel }}</footer>
</body>
</html>
