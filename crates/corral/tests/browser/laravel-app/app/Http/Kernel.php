<?php
namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

/**
 * 'web' is empty: the browser walk needs routing, views and storage, no
 * sessions or cookies. 'stock-web' is Laravel 8's stock global middleware
 * and 'web' group, for the page bench/run.sh measures (/bench): a real
 * request's session, cookie encryption and CSRF cost.
 */
class Kernel extends HttpKernel
{
    protected $middleware = [];
    protected $middlewareGroups = [
        'web' => [],
        'stock-web' => [
            \Illuminate\Foundation\Http\Middleware\PreventRequestsDuringMaintenance::class,
            \Illuminate\Foundation\Http\Middleware\ValidatePostSize::class,
            \Illuminate\Foundation\Http\Middleware\TrimStrings::class,
            \Illuminate\Foundation\Http\Middleware\ConvertEmptyStringsToNull::class,
            \Illuminate\Cookie\Middleware\EncryptCookies::class,
            \Illuminate\Cookie\Middleware\AddQueuedCookiesToResponse::class,
            \Illuminate\Session\Middleware\StartSession::class,
            \Illuminate\View\Middleware\ShareErrorsFromSession::class,
            \Illuminate\Foundation\Http\Middleware\VerifyCsrfToken::class,
            \Illuminate\Routing\Middleware\SubstituteBindings::class,
        ],
    ];
    protected $routeMiddleware = [];
}
